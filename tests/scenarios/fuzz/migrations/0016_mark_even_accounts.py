from django.db import migrations, models


def mark_even(apps, schema_editor):
    Account = apps.get_model("fuzz", "Account")
    Account.objects.filter(id__lte=5000).update(level=1)


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0015_order_created_at_index")]
    operations = [
        migrations.RunPython(mark_even, migrations.RunPython.noop),
    ]
