from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("risky", "0001_initial")]
    operations = [
        migrations.AddField("item", "legacy", models.CharField(max_length=20, null=True)),
        migrations.AddIndex("item", models.Index(fields=["name"], name="risky_item_name_idx")),
    ]
