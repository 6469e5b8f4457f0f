from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_support", "0007_comment_is_internal"),
    ]

    operations = [
        migrations.RenameModel(
            old_name="Comment",
            new_name="TicketComment",
        ),
    ]
