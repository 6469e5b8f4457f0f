from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_support", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="assignee_email",
            field=models.EmailField(blank=True, max_length=254, null=True),
        ),
    ]
