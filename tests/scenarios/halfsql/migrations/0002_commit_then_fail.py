from django.db import migrations

# A block that commits part of its work (PostgreSQL 11+ allows COMMIT in a DO block
# run outside a transaction), then fails.
COMMIT_THEN_FAIL = """
DO $$
BEGIN
    INSERT INTO halfsql_entry (label) VALUES ('committed by the block');
    COMMIT;
    INSERT INTO halfsql_entry (label) VALUES ('undone by the error');
    PERFORM 1 / 0;
END
$$
"""


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("halfsql", "0001_initial")]
    operations = [migrations.RunSQL(COMMIT_THEN_FAIL, migrations.RunSQL.noop)]
