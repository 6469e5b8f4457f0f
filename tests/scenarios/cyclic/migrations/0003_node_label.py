from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cyclic", "0002_node_name")]
    operations = [migrations.AddField("node", "label", models.TextField(null=True))]
