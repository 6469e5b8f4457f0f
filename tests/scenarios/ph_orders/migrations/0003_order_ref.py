from django.db import migrations, models


class Migration(migrations.Migration):
    # Additive (pre-deploy), but it was generated after the catalog's contract step.
    dependencies = [
        ("ph_orders", "0002_order_note"),
        ("ph_catalog", "0003_remove_product_legacy_code"),
    ]
    operations = [migrations.AddField("order", "ref", models.CharField(max_length=20, null=True))]
