from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ph_catalog", "0002_product_slug")]
    operations = [migrations.RemoveField("product", "legacy_code")]
