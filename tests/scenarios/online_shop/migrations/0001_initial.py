from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            "Category",
            [("id", models.BigAutoField(primary_key=True)), ("name", models.TextField())],
        ),
        migrations.CreateModel(
            "Item",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("qty", models.IntegerField()),
                ("note", models.CharField(max_length=100, null=True)),
                ("code", models.CharField(max_length=20, null=True)),
                ("size", models.IntegerField(null=True)),
            ],
        ),
    ]
