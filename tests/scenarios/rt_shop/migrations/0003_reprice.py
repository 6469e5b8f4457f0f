from django.db import migrations

# The reverse puts the default back but forgets the index the forward SQL drops.


class Migration(migrations.Migration):
    dependencies = [("rt_shop", "0002_item_sku_index")]
    operations = [
        migrations.RunSQL(
            [
                "ALTER TABLE rt_shop_item ALTER COLUMN price SET DEFAULT 0",
                "DROP INDEX rt_shop_item_sku_idx",
            ],
            reverse_sql=["ALTER TABLE rt_shop_item ALTER COLUMN price DROP DEFAULT"],
        ),
    ]
