from typing import Any

from django.db import migrations, models

# The ledger's records are append-only in the database itself. Row triggers refuse
# UPDATE and DELETE; TRUNCATE fires no row trigger, so each table also gets a statement
# trigger BEFORE TRUNCATE, which PostgreSQL fires for every table a TRUNCATE empties,
# those reached through CASCADE included
# (https://www.postgresql.org/docs/current/sql-createtrigger.html).
# A run's own row is updated when the run ends, so runs refuse DELETE and TRUNCATE only;
# the high-water mark is updated by every run and refuses them too.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION django_safemigrate_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'django_safemigrate: % on % refused: the migration ledger is append-only',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""
ROW_GUARDS = {
    "django_safemigrate_run": "DELETE",
    "django_safemigrate_migrationrecord": "UPDATE OR DELETE",
    "django_safemigrate_steprecord": "UPDATE OR DELETE",
    "django_safemigrate_ledgermark": "DELETE",
}


def _statements() -> list[str]:
    statements = [APPEND_ONLY_FUNCTION]
    for table, events in ROW_GUARDS.items():
        statements += [
            f"CREATE TRIGGER django_safemigrate_append_only BEFORE {events} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION django_safemigrate_ledger_append_only()",
            f"CREATE TRIGGER django_safemigrate_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION django_safemigrate_ledger_append_only()",
        ]
    # Reviews refuse UPDATE and DELETE since 0005; TRUNCATE too from now on.
    statements.append(
        "CREATE TRIGGER django_safemigrate_no_truncate BEFORE TRUNCATE ON "
        "django_safemigrate_review FOR EACH STATEMENT "
        "EXECUTE FUNCTION django_safemigrate_review_append_only()"
    )
    return statements


def _drop_statements() -> list[str]:
    statements = ["DROP TRIGGER django_safemigrate_no_truncate ON django_safemigrate_review"]
    for table in ROW_GUARDS:
        statements += [
            f"DROP TRIGGER django_safemigrate_no_truncate ON {table}",
            f"DROP TRIGGER django_safemigrate_append_only ON {table}",
        ]
    return [*statements, "DROP FUNCTION django_safemigrate_ledger_append_only()"]


def guard(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for statement in _statements():
            schema_editor.execute(statement, params=None)


def unguard(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for statement in _drop_statements():
            schema_editor.execute(statement, params=None)


def first_mark(apps: Any, schema_editor: Any) -> None:
    """The mark starts at what the ledger holds now (nothing on a new database)."""
    from django.utils import timezone

    using = schema_editor.connection.alias
    apps.get_model("django_safemigrate", "LedgerMark").objects.using(using).create(
        runs=apps.get_model("django_safemigrate", "Run").objects.using(using).count(),
        records=apps.get_model("django_safemigrate", "MigrationRecord")
        .objects.using(using)
        .count(),
        steps=apps.get_model("django_safemigrate", "StepRecord").objects.using(using).count(),
        updated_at=timezone.now(),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("django_safemigrate", "0005_reviews"),
    ]

    operations = [
        migrations.CreateModel(
            name="LedgerMark",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("runs", models.BigIntegerField(default=0)),
                ("records", models.BigIntegerField(default=0)),
                ("steps", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "ledger mark",
                "verbose_name_plural": "ledger marks",
            },
        ),
        migrations.AddField(
            model_name="review",
            name="host",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AddField(
            model_name="review",
            name="os_user",
            field=models.CharField(blank=True, max_length=150, null=True),
        ),
        migrations.AddField(
            model_name="run",
            name="ungoverned",
            field=models.TextField(
                blank=True, help_text="What this run did without governance, and why.", null=True
            ),
        ),
        migrations.RunPython(first_mark, migrations.RunPython.noop),
        migrations.RunPython(guard, unguard),
    ]
