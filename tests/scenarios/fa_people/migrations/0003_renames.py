from django.db import migrations

from fa_people.fingerprint import record


def after_renames(apps, schema_editor):
    record(apps, "fa_people.0003_renames")
    Person = apps.get_model("fa_people", "Person")
    Venue = apps.get_model("fa_people", "Venue")
    Product = apps.get_model("fa_shop", "Product")
    Review = apps.get_model("fa_shop", "Review")
    luigi = Venue.objects.select_related("manager").get(title="Luigi")
    assert (luigi.title, luigi.manager.nickname) == ("Luigi", "ann")
    # Foreign keys to the renamed model and to the renamed to_field follow them.
    assert list(Product.objects.filter(venue__title="Luigi").values_list("sku", flat=True)) == [
        "P-1"
    ]
    assert [r.author.nickname for r in Review.objects.select_related("author")] == ["bob"]
    bob = Person.objects.get(nickname="bob")
    Venue.objects.create(title="Market", manager=bob)
    assert bob.review_set.get().product.name == "Lamp"


class Migration(migrations.Migration):
    dependencies = [("fa_people", "0002_people_data"), ("fa_shop", "0002_shop_data")]

    operations = [
        migrations.RenameModel("Place", "Venue"),
        migrations.RenameField("Venue", "name", "title"),
        migrations.RenameField("Person", "handle", "nickname"),
        migrations.RunPython(after_renames, migrations.RunPython.noop),
    ]
