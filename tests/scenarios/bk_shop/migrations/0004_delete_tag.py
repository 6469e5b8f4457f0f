from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("bk_shop", "0003_remove_item_legacy")]
    operations = [migrations.DeleteModel("Tag")]
