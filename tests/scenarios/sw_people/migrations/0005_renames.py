from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sw_people", "0004_referenced_changes"), ("sw_shop", "0002_local_changes")]
    operations = [
        migrations.RenameField("team", "code", "team_code"),
        migrations.AlterField("team", "team_code", models.CharField(max_length=40, unique=True)),
        migrations.AlterModelTable("person", "people_person"),
        migrations.AddField("person", "nickname", models.CharField(max_length=20, null=True)),
        migrations.RenameModel("Team", "Squad"),
        migrations.AlterField("squad", "name", models.CharField(max_length=60, default="")),
    ]
