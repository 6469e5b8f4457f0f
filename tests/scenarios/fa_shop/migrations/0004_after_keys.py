from django.db import migrations

from fa_people.fingerprint import record


def after_keys(apps, schema_editor):
    record(apps, "fa_shop.0004_after_keys")
    Person = apps.get_model("fa_people", "Person")
    Tag = apps.get_model("fa_people", "Tag")
    Product = apps.get_model("fa_shop", "Product")
    Order = apps.get_model("fa_shop", "Order")
    cy = Person.objects.get(nickname="cy")
    desk = Product.objects.create(code="P-3", name="Desk", owner=cy)
    desk.tags.add(Tag.objects.get(word="gold"))
    order = Order.objects.create(customer=cy)
    order.items.add(desk, through_defaults={"quantity": 1})
    assert [p.code for p in cy.products.prefetch_related("tags")] == ["P-3"]
    assert Tag.objects.get(word="gold").product_set.get().owner.nickname == "cy"


class Migration(migrations.Migration):
    dependencies = [("fa_shop", "0003_renames"), ("fa_people", "0004_bigger_keys")]

    operations = [migrations.RunPython(after_keys, migrations.RunPython.noop)]
