from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ph_catalog", "0001_initial")]
    operations = [migrations.AddField("product", "slug", models.SlugField(null=True))]
