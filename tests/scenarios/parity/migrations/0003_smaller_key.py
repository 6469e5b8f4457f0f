from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("parity", "0002_constraints")]
    operations = [
        # The primary key's type changes under a foreign key that points at it: Django drops
        # the foreign key, changes both columns and the sequence, and creates it again.
        migrations.AlterField(
            model_name="item", name="id", field=models.AutoField(primary_key=True, serialize=False)
        ),
    ]
