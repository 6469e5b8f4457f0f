from django.db import migrations


def welcome(apps, schema_editor):
    apps.get_model("rt_oneway", "Note").objects.create(text="Welcome")


class Migration(migrations.Migration):
    dependencies = [("rt_oneway", "0001_initial")]
    # No reverse function: Django refuses to unapply it (IrreversibleError).
    operations = [migrations.RunPython(welcome)]
