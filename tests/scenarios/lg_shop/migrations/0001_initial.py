from django.db import migrations

from django_safemigrate import Safe


class Migration(migrations.Migration):
    initial = True
    safe = Safe.before_deploy()
    dependencies = []
    operations = [
        migrations.RunSQL(
            "CREATE TABLE lg_shop_base (id bigint PRIMARY KEY)", "DROP TABLE lg_shop_base"
        ),
    ]
