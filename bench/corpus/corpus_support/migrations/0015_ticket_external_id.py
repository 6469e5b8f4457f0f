from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_support", "0014_ticket_satisfaction"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="external_id",
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
    ]
