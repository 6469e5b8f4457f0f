from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(max_length=20)),
            ],
        ),
        migrations.RunSQL(
            "INSERT INTO cic_index_event (kind) SELECT 'k' || (i % 50) FROM generate_series(1, 20000) i",
            migrations.RunSQL.noop,
        ),
    ]
