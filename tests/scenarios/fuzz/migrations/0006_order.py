from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0005_backfill_status")]
    operations = [
        migrations.CreateModel(
            name="Order",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")), ("total", models.IntegerField()), ("account", models.ForeignKey(on_delete=models.deletion.CASCADE, to="fuzz.account"))],
        ),
    ]
