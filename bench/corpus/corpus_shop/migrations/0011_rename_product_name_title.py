from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_shop", "0010_delete_wishlist"),
    ]

    operations = [
        migrations.RenameField(
            model_name="product",
            old_name="name",
            new_name="title",
        ),
    ]
