from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("kind", models.CharField(max_length=20)),
            ],
        ),
        migrations.RunSQL(
            "INSERT INTO cic_index_event (kind) SELECT 'k' || (i % 50) FROM generate_series(1, 20000) i",
            migrations.RunSQL.noop,
        ),
    ]
