from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_shop", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="product",
            name="description",
            field=models.TextField(blank=True, db_default=""),
        ),
    ]
