from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ph_billing", "0001_initial")]
    operations = [migrations.RenameField("invoice", "amount", "total")]
