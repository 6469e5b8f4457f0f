from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_item_name_idx")]
    operations = [migrations.AddField("item", "sku", models.CharField(max_length=40, null=True))]
