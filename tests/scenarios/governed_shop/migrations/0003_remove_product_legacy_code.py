from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("governed_shop", "0002_product_legacy_code")]
    operations = [
        migrations.RemoveField("product", "legacy_code"),
    ]
