from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_support", "0008_rename_comment_ticketcomment"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ticket",
            name="customer_email",
            field=models.EmailField(db_index=True, max_length=254),
        ),
    ]
