from django.db import migrations, models


class Migration(migrations.Migration):
    # Django sets the default, fills the NULLs with one UPDATE and sets NOT NULL.
    dependencies = [("online_shop", "0003_drop_index")]
    operations = [migrations.AlterField("item", "size", models.IntegerField(default=7))]
