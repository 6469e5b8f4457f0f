from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_support", "0003_alter_ticket_priority"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ticket",
            name="subject",
            field=models.CharField(max_length=120),
        ),
    ]
