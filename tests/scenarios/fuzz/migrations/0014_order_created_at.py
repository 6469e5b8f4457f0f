from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0013_score_index_and_level")]
    operations = [
        migrations.AddField("order", "created_at", models.DateTimeField(null=True)),
    ]
