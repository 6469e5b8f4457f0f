from django.db import migrations, models


def add_products(apps, schema_editor):
    Product = apps.get_model("review_shop", "Product")
    Product.objects.bulk_create(
        Product(name=f"product {i}", price=i, legacy_code=f"L{i}") for i in range(500)
    )


class Migration(migrations.Migration):
    initial = True
    # The admin's own tables first: the first deploy (on an empty database, not gated)
    # sets up the admin the reviewers use (tests/review_site_settings.py).
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("sessions", "0001_initial"),
    ]
    operations = [
        migrations.CreateModel(
            name="Product",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("price", models.IntegerField(default=0)),
                ("legacy_code", models.CharField(max_length=20, null=True)),
            ],
        ),
        migrations.RunPython(add_products, migrations.RunPython.noop),
    ]
