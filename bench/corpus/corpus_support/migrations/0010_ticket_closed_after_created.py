from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_support", "0009_alter_ticket_customer_email_db_index"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="ticket",
            constraint=models.CheckConstraint(
                condition=models.Q(("closed_at__isnull", True))
                | models.Q(("closed_at__gte", models.F("created_at"))),
                name="ticket_closed_after_created",
            ),
        ),
    ]
