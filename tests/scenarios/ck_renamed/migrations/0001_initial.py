from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [("contenttypes", "0002_remove_content_type_name")]
    operations = [
        migrations.CreateModel(
            "Post",
            [("id", models.BigAutoField(primary_key=True)), ("title", models.TextField())],
        ),
    ]
