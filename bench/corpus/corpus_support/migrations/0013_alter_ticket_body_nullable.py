from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_support", "0012_placeholder_runsql_noop"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ticket",
            name="body",
            field=models.TextField(blank=True, null=True),
        ),
    ]
