from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ck_renamed", "0001_initial")]
    operations = [migrations.RenameModel("Post", "Article")]
