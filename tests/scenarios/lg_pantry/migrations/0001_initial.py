from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.RunSQL(
            "CREATE TABLE lg_pantry_base (id bigint PRIMARY KEY)", "DROP TABLE lg_pantry_base"
        ),
    ]
