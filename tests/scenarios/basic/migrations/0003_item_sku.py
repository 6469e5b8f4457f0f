from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("basic", "0002_item_price")]
    operations = [
        migrations.AddField("item", "sku", models.CharField(max_length=20, null=True)),
    ]
