from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_shop", "0009_order_public_id"),
    ]

    operations = [
        migrations.DeleteModel(
            name="Wishlist",
        ),
    ]
