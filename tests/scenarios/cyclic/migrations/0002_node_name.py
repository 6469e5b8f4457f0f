from django.db import migrations, models


class Migration(migrations.Migration):
    # Wrong on purpose: 0003 depends on this one, and this one on 0003.
    dependencies = [("cyclic", "0001_initial"), ("cyclic", "0003_node_label")]
    operations = [migrations.AddField("node", "name", models.TextField(null=True))]
