from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0017_tag")]
    operations = [
        migrations.AddField("account", "tag", models.ForeignKey(null=True, on_delete=models.deletion.SET_NULL, to="fuzz.tag")),
    ]
