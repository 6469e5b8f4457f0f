from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_shop", "0002_product_description"),
    ]

    operations = [
        migrations.AlterField(
            model_name="product",
            name="price",
            field=models.DecimalField(decimal_places=2, max_digits=12),
        ),
    ]
