from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_support", "0013_alter_ticket_body_nullable"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="satisfaction",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
    ]
