from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("resumable", "0001_initial")]
    operations = [
        migrations.AddField("account", "note", models.TextField(null=True)),
        # Fails while duplicate emails exist, leaving an INVALID index behind.
        migrations.RunSQL(
            "CREATE UNIQUE INDEX CONCURRENTLY resumable_account_email_uniq "
            "ON resumable_account (email)",
            "DROP INDEX CONCURRENTLY IF EXISTS resumable_account_email_uniq",
        ),
        migrations.AddField("account", "verified", models.BooleanField(null=True)),
    ]
