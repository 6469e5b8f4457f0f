from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sw_shop", "0002_local_changes"), ("sw_people", "0005_renames")]
    operations = [
        migrations.AlterField(
            "order",
            "team",
            models.ForeignKey(
                null=True, on_delete=models.PROTECT, to="sw_people.squad", to_field="team_code"
            ),
        ),
        migrations.AlterField(
            "order", "person", models.ForeignKey(null=True, on_delete=models.CASCADE, to="sw_people.person")
        ),
        migrations.RemoveField("item", "parent"),
        migrations.DeleteModel("Item"),
    ]
