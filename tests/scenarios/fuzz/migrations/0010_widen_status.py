from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0009_order_total_positive")]
    operations = [
        migrations.AlterField("account", "status", models.CharField(max_length=20, null=True)),
    ]
