from django.db import migrations


class Migration(migrations.Migration):
    # Used to copy tickets from the old helpdesk; that ran everywhere long ago. Kept as a
    # no-op so the migration graph stays the same.
    dependencies = [
        ("corpus_support", "0010_ticket_closed_after_created"),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop),
    ]
