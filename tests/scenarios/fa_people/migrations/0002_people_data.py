from django.db import migrations

from fa_people.fingerprint import record


def people(apps, schema_editor):
    record(apps, "fa_people.0002_people_data")
    Person = apps.get_model("fa_people", "Person")
    Staff = apps.get_model("fa_people", "Staff")
    Place = apps.get_model("fa_people", "Place")
    Tag = apps.get_model("fa_people", "Tag")
    ann = Person.objects.create(handle="ann", password="!")
    bob = Staff.objects.create(handle="bob", password="!")
    Place.objects.create(name="Luigi", manager=ann)
    Place.objects.create(name="Park", manager=bob)
    Tag.objects.bulk_create(Tag(word=word) for word in ("red", "green", "blue"))
    # Reverse accessors, select_related, a proxy's rows.
    assert ann.place_set.get().name == "Luigi"
    assert Place.objects.select_related("manager").get(name="Park").manager.handle == "bob"
    assert Staff.objects.count() == Person.objects.count() == 2


class Migration(migrations.Migration):
    dependencies = [("fa_people", "0001_initial")]

    operations = [migrations.RunPython(people, migrations.RunPython.noop)]
