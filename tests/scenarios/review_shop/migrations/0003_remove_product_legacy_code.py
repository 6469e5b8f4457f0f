from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("review_shop", "0002_product_sku")]
    operations = [
        migrations.RemoveField("product", "legacy_code"),
    ]
