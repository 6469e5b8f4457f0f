from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Account",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")), ("email", models.CharField(max_length=100)), ("name", models.CharField(max_length=100))],
        ),
        migrations.RunSQL(
            "INSERT INTO fuzz_account (email, name) SELECT 'a' || i || '@x', 'name ' || i FROM generate_series(1, 20000) i",
            migrations.RunSQL.noop,
        ),
    ]
