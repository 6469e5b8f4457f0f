from django.db import migrations, models

from fa_people.fingerprint import record


def after_keys(apps, schema_editor):
    record(apps, "fa_people.0004_bigger_keys")
    Person = apps.get_model("fa_people", "Person")
    Tag = apps.get_model("fa_people", "Tag")
    Venue = apps.get_model("fa_people", "Venue")
    cy = Person.objects.create(nickname="cy", password="!")
    Venue.objects.create(title="Kiosk", manager=cy)
    Tag.objects.create(word="gold")
    assert [v.title for v in cy.venue_set.all()] == ["Kiosk"]


class Migration(migrations.Migration):
    dependencies = [("fa_people", "0003_renames"), ("fa_shop", "0003_renames")]

    operations = [
        # The user model's key and a key behind an automatic M2M table: the foreign keys of
        # both apps and the M2M table's column follow the new type.
        migrations.AlterField(
            "Person", "id", models.BigAutoField(primary_key=True, serialize=False)
        ),
        migrations.AlterField(
            "Tag", "id", models.BigAutoField(primary_key=True, serialize=False)
        ),
        migrations.RunPython(after_keys, migrations.RunPython.noop),
    ]
