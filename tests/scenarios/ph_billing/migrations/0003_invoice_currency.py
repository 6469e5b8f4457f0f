from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ph_billing", "0002_rename_invoice_amount")]
    # Runs on either side of the rollout; here it waits for the rename it depends on.
    safemigrate_phase = "always"
    operations = [migrations.AddField("invoice", "currency", models.CharField(max_length=3, null=True))]
