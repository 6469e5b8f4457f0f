"""Code reaching a changed model through reverse accessors of models that did not change."""

from django.db import migrations


def forwards(apps, schema_editor):
    Tag = apps.get_model("la_orders", "Tag")
    Customer = apps.get_model("la_orders", "Customer")
    tag = Tag.objects.get(name="first")
    for order in tag.order_set.all():
        order.note = f"for {order.customer.name}"
        order.save(update_fields=["note"])
    assert Customer.objects.get(name="Ada").order_set.get().note == "for Ada"


class Migration(migrations.Migration):
    dependencies = [("la_orders", "0003_order_note")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
