from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("review_shop", "0003_remove_product_legacy_code")]
    operations = [
        migrations.AddField("product", "stock", models.IntegerField(null=True)),
    ]
