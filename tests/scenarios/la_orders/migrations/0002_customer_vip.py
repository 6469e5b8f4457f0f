"""A field added to a model others point at, then code using the relations at once."""

from django.db import migrations, models


def forwards(apps, schema_editor):
    Customer = apps.get_model("la_orders", "Customer")
    Order = apps.get_model("la_orders", "Order")
    Tag = apps.get_model("la_orders", "Tag")
    customer = Customer.objects.create(name="Ada", vip=True)
    # Assigning a Customer to Order.customer checks the class Order's field leads to.
    order = Order.objects.create(customer=customer, total=5)
    order.tags.add(Tag.objects.create(name="first"))
    assert Order.objects.select_related("customer").get(pk=order.pk).customer.vip is True
    assert customer.order_set.count() == 1


class Migration(migrations.Migration):
    dependencies = [("la_orders", "0001_initial")]
    operations = [
        migrations.AddField("customer", "vip", models.BooleanField(default=False)),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
