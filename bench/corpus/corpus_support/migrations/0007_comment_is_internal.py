from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_support", "0006_ticket_status_priority_idx"),
    ]

    operations = [
        migrations.AddField(
            model_name="comment",
            name="is_internal",
            field=models.BooleanField(db_default=False, default=False),
        ),
    ]
