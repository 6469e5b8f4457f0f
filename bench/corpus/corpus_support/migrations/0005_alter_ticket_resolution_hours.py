from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_support", "0004_alter_ticket_subject"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ticket",
            name="resolution_hours",
            field=models.IntegerField(blank=True, null=True),
        ),
    ]
