from django.db import migrations

from fa_people.fingerprint import record


def after_renames(apps, schema_editor):
    record(apps, "fa_shop.0003_renames")
    Product = apps.get_model("fa_shop", "Product")
    CheapProduct = apps.get_model("fa_shop", "CheapProduct")
    Order = apps.get_model("fa_shop", "Order")
    Review = apps.get_model("fa_shop", "Review")
    review = Review.objects.select_related("product__venue", "author").get()
    assert (review.product.code, review.product.venue.title) == ("P-1", "Luigi")
    assert review.product_id == "P-1"
    order = Order.objects.select_related("customer").get()
    assert order.customer.nickname == "bob"
    assert order.orderline_set.filter(product__code="P-2").get().quantity == 5
    assert Product.objects.get(code="G-1").gadget.battery
    # A proxy of a model whose field was renamed: the proxy follows its concrete model.
    assert CheapProduct.objects.select_related("owner").get(code="P-2").owner.nickname == "ann"
    Product.objects.filter(code="P-2").update(name="Stool")


class Migration(migrations.Migration):
    dependencies = [("fa_shop", "0002_shop_data"), ("fa_people", "0003_renames")]

    operations = [
        # A to_field target, and foreign keys themselves.
        migrations.RenameField("Product", "sku", "code"),
        migrations.RenameField("Order", "buyer", "customer"),
        migrations.RunPython(after_renames, migrations.RunPython.noop),
    ]
