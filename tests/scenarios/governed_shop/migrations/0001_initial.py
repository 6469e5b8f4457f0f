from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    # The site's own apps come first, so that the first deploy (``safemigrate
    # governed_shop 0002`` on an empty database, which is not gated) sets up the
    # admin the reviewers use (used with tests/review_site_settings.py).
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
            ],
        ),
    ]
