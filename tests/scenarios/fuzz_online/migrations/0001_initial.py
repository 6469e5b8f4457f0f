from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Category",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=50)),
            ],
        ),
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.CharField(max_length=20, null=True)),
                ("ref", models.CharField(max_length=20, null=True)),
                ("qty", models.IntegerField(null=True)),
                ("note", models.CharField(max_length=100, null=True)),
                ("amount", models.IntegerField()),
            ],
            options={
                "indexes": [
                    models.Index(fields=["amount"], name="fuzz_online_amount_idx"),
                    models.Index(fields=["note"], name="fuzz_online_note_idx"),
                ],
            },
        ),
    ]
