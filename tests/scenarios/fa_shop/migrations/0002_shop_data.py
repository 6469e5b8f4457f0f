from django.db import migrations

from fa_people.fingerprint import record


def shop(apps, schema_editor):
    record(apps, "fa_shop.0002_shop_data")
    Person = apps.get_model("fa_people", "Person")
    Place = apps.get_model("fa_people", "Place")
    Tag = apps.get_model("fa_people", "Tag")
    Product = apps.get_model("fa_shop", "Product")
    CheapProduct = apps.get_model("fa_shop", "CheapProduct")
    Gadget = apps.get_model("fa_shop", "Gadget")
    Order = apps.get_model("fa_shop", "Order")
    OrderLine = apps.get_model("fa_shop", "OrderLine")
    Review = apps.get_model("fa_shop", "Review")
    ann, bob = Person.objects.get(handle="ann"), Person.objects.get(handle="bob")
    lamp = Product.objects.create(
        sku="P-1", name="Lamp", owner=ann, venue=Place.objects.get(name="Luigi")
    )
    chair = CheapProduct.objects.create(sku="P-2", name="Chair", owner=ann)
    Gadget.objects.create(sku="G-1", name="Radio", owner=bob, battery=True)
    lamp.tags.add(*Tag.objects.filter(word__in=["red", "blue"]))
    chair.tags.add(Tag.objects.get(word="green"))
    order = Order.objects.create(buyer=bob)
    OrderLine.objects.create(order=order, product=lamp, quantity=2)
    order.items.add(chair, through_defaults={"quantity": 5})
    Review.objects.create(product=lamp, author=bob, stars=4)
    # Relations, forward and reverse, across both apps.
    assert [p.venue.name if p.venue else None for p in Product.objects.select_related(
        "owner", "venue").order_by("sku")] == [None, "Luigi", None]
    assert ann.products.count() == 2
    # The multi-table child through its parent and back.
    assert bob.products.get().gadget.battery
    assert Gadget.objects.select_related("owner").get().owner.handle == "bob"
    assert sorted(Tag.objects.get(word="red").product_set.values_list("sku", flat=True)) == [
        "P-1"
    ]
    assert sorted(order.items.values_list("orderline__quantity", flat=True)) == [2, 5]
    assert bob.order_set.get().orderline_set.count() == 2
    assert Review.objects.select_related("product", "author").get().author.handle == "bob"


class Migration(migrations.Migration):
    dependencies = [("fa_shop", "0001_initial")]

    operations = [migrations.RunPython(shop, migrations.RunPython.noop)]
