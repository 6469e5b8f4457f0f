from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0016_mark_even_accounts")]
    operations = [
        migrations.CreateModel(name="Tag", fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")), ("name", models.CharField(max_length=30))]),
        migrations.RunSQL("INSERT INTO fuzz_tag (name) SELECT 'tag' || i FROM generate_series(1, 50) i", migrations.RunSQL.noop),
    ]
