from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("bk_shop", "0001_initial")]
    operations = [migrations.AddField("item", "note", models.TextField(null=True))]
