from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_inventory", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="stockitem",
            name="reserved",
            field=models.IntegerField(db_default=0),
        ),
    ]
