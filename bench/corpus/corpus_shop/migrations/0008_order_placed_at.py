import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_shop", "0007_alter_product_category_not_null"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="placed_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
        ),
    ]
