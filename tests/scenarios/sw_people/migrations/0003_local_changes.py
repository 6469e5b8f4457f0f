import django
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sw_people", "0002_member_vip"), ("sw_shop", "0001_initial")]
    operations = [
        migrations.AddField("person", "age", models.IntegerField(null=True)),
        migrations.AlterField("person", "name", models.CharField(max_length=80)),
        migrations.AddIndex("person", models.Index(fields=["name"], name="sw_person_name_idx")),
        migrations.AddConstraint(
            "person",
            # Django 5.1 renamed check= to condition= (and 6.0 removed check=).
            models.CheckConstraint(condition=models.Q(age__gte=0), name="sw_person_age_gte_0")
            if django.VERSION >= (5, 1)
            else models.CheckConstraint(check=models.Q(age__gte=0), name="sw_person_age_gte_0"),
        ),
        migrations.AddField("member", "level", models.IntegerField(default=1)),
    ]
