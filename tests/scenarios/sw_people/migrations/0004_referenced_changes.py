from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sw_people", "0003_local_changes")]
    operations = [
        # Referenced by sw_shop.Order.team (to_field="code"): the foreign key column follows.
        migrations.AlterField("team", "code", models.CharField(max_length=20, unique=True)),
        # Referenced by every foreign key to Person, the child's parent link and, through
        # it, Badge's primary key.
        migrations.AlterField("person", "id", models.BigAutoField(primary_key=True, serialize=False)),
        migrations.AddField("team", "name", models.CharField(max_length=30, default="")),
    ]
