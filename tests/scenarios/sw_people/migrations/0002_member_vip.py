import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sw_people", "0001_initial")]
    operations = [
        migrations.CreateModel(
            name="Member",
            fields=[
                (
                    "person_ptr",
                    models.OneToOneField(
                        auto_created=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        parent_link=True,
                        primary_key=True,
                        serialize=False,
                        to="sw_people.person",
                    ),
                ),
                ("since", models.DateField(null=True)),
            ],
            bases=("sw_people.person",),
        ),
        migrations.CreateModel(
            name="Vip",
            fields=[],
            options={"proxy": True},
            bases=("sw_people.person",),
        ),
        migrations.CreateModel(
            name="Badge",
            fields=[
                (
                    "member",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        serialize=False,
                        to="sw_people.member",
                    ),
                ),
                ("label", models.CharField(max_length=20)),
            ],
        ),
    ]
