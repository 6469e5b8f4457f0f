from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Customer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.CharField(max_length=100)),
                ("email_normalized", models.CharField(max_length=100, null=True)),
            ],
        ),
        migrations.RunSQL(
            "INSERT INTO backfill_customer (email) "
            "SELECT 'User' || i || '@Example.COM' FROM generate_series(1, 30000) i",
            migrations.RunSQL.noop,
        ),
    ]
