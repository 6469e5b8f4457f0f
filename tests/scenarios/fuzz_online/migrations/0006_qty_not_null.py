from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz_online", "0005_note_not_null")]
    operations = [
        migrations.AlterField("item", "qty", models.IntegerField(default=0)),
    ]
