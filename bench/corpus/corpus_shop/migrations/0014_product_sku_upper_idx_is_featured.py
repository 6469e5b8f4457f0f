import django.db.models.functions.text
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("corpus_shop", "0013_remove_order_internal_note_state_only"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="product",
            index=models.Index(
                django.db.models.functions.text.Upper("sku"), name="product_sku_upper_idx"
            ),
        ),
        migrations.AddField(
            model_name="product",
            name="is_featured",
            field=models.BooleanField(db_default=False),
        ),
    ]
