from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_shop", "0005_alter_product_sku_unique"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["status", "-created_at"], name="order_status_created_idx"),
        ),
    ]
