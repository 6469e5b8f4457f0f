from django.db import migrations, models, transaction


def import_entries(apps, schema_editor):
    Entry = apps.get_model("halfwritten", "Entry")
    # In autocommit, each of these commits as it runs.
    Entry.objects.create(label="first")
    Entry.objects.bulk_create([Entry(label="second"), Entry(label="third")])
    # Written in a block that is rolled back: it never reaches the table.
    try:
        with transaction.atomic():
            Entry.objects.create(label="rolled back")
            raise ValueError("undo this block")
    except ValueError:
        pass
    raise RuntimeError("line 4 of the import file is malformed")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("halfwritten", "0001_initial")]
    operations = [
        migrations.AddField("entry", "source", models.TextField(null=True)),
        migrations.RunPython(import_entries, migrations.RunPython.noop),
    ]
