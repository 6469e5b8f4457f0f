from django.db import migrations, models


def fill_sku(apps, schema_editor):
    """Every product gets a SKU made from its id, 100 rows at a time."""
    Product = apps.get_model("review_shop", "Product")
    for product in Product.objects.filter(sku__isnull=True).iterator(chunk_size=100):
        product.sku = f"SKU-{product.pk:06d}"
        product.save(update_fields=["sku"])


class Migration(migrations.Migration):
    dependencies = [("review_shop", "0001_initial")]
    operations = [
        migrations.AddField("product", "sku", models.CharField(max_length=40, null=True)),
        migrations.RunPython(fill_sku, migrations.RunPython.noop),
        migrations.AddIndex("product", models.Index(fields=["sku"], name="review_shop_sku_idx")),
    ]
