from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("failing", "0001_initial")]
    operations = [
        migrations.AddField("item", "price", models.IntegerField(null=True)),
        migrations.RunSQL("SELECT 1 / 0", migrations.RunSQL.noop),
    ]
