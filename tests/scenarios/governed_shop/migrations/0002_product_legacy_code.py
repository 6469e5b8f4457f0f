from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("governed_shop", "0001_initial")]
    operations = [
        migrations.AddField("product", "legacy_code", models.CharField(max_length=20, null=True)),
        migrations.AddIndex("product", models.Index(fields=["name"], name="governed_shop_name_idx")),
    ]
