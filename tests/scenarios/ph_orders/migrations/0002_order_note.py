from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ph_orders", "0001_initial"), ("ph_catalog", "0002_product_slug")]
    operations = [migrations.AddField("order", "note", models.TextField(null=True))]
