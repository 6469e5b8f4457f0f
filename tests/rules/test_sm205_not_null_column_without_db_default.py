from __future__ import annotations

import pytest
from django.db import connection, migrations, models
from django.db.models.functions import Lower
from django.db.utils import IntegrityError

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

pytestmark = pytest.mark.filterwarnings(
    "ignore::django_zero_downtime_migrations.backends.postgres.schema.UnsafeOperationWarning"
)

OTHER = migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))])
ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("note", models.CharField(max_length=20, null=True)),
        ("code", models.CharField(max_length=20, null=True, db_default="x")),
    ],
)
SETUP = [OTHER, ITEM]
ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
# django-pg-zero-downtime-migrations queues SET NOT NULL and foreign keys as deferred
# statement objects that only its own execute() can render; both backends are judged.
ENGINES_WITH_DEFERRED_SQL = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


def add(name, field):
    return migrations.AddField("item", name, field)


@ENGINES
def test_flags_not_null_field_added_with_a_python_default(engine):
    op = add("sku", models.CharField(max_length=10, default="none"))
    finding = flags("SM205", judge([op], setup=SETUP, engine=engine))
    assert finding.severity.value == "risky"
    assert finding.table == "testapp_item"
    assert finding.lock is None
    assert finding.blocking
    assert "sku" in finding.message
    assert "db_default=<value>" in finding.hint


def test_a_small_table_still_blocks():
    # The old code's INSERTs fail however few rows the table has.
    op = add("sku", models.CharField(max_length=10, default="none"))
    findings = judge([op], setup=SETUP, tables={"testapp_item": 5, "testapp_other": 5})
    assert flags("SM205", findings).blocking


@ENGINES_WITH_DEFERRED_SQL
def test_flags_not_null_foreign_key(engine):
    op = add("other", models.ForeignKey("testapp.Other", models.CASCADE, default=1))
    flags("SM205", judge([op], setup=SETUP, engine=engine))


def test_flags_the_database_side_of_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[add("sku", models.CharField(max_length=10, default="none"))]
    )
    flags("SM205", judge([op], setup=SETUP))


def test_flags_even_when_the_backend_refuses_to_render_it(settings):
    settings.ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE = True
    op = add("sku", models.CharField(max_length=10, default="none"))
    finding = flags("SM205", judge([op], setup=SETUP, engine=ZERO_DOWNTIME))
    assert finding.table == "testapp_item"


@ENGINES
@pytest.mark.parametrize(
    "field",
    [
        models.CharField(max_length=10, null=True),
        models.CharField(max_length=10, db_default="none"),
        models.CharField(max_length=10, default="none", db_default="none"),
        models.IntegerField(db_default=0),
        models.GeneratedField(
            expression=Lower("name"), output_field=models.CharField(max_length=20), db_persist=True
        ),
    ],
    ids=["nullable", "db_default", "both_defaults", "int_db_default", "generated"],
)
def test_leaves_columns_old_code_can_insert_without_alone(engine, field):
    leaves_alone("SM205", judge([add("extra", field)], setup=SETUP, engine=engine))


@ENGINES_WITH_DEFERRED_SQL
def test_leaves_many_to_many_alone(engine):
    op = add("others", models.ManyToManyField("testapp.Other"))
    leaves_alone("SM205", judge([op], setup=SETUP, engine=engine))


@ENGINES
def test_leaves_a_field_of_a_table_created_in_the_same_migration_alone(engine):
    op = add("sku", models.CharField(max_length=10, default="none"))
    leaves_alone("SM205", judge([OTHER, ITEM, op], engine=engine))


def test_leaves_a_model_created_on_the_same_database_side_alone():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[ITEM, add("sku", models.CharField(max_length=10, default="none"))]
    )
    leaves_alone("SM205", judge([op], setup=[OTHER]))


@ENGINES
def test_leaves_state_only_add_field_alone(engine):
    op = migrations.SeparateDatabaseAndState(
        state_operations=[add("sku", models.CharField(max_length=10, default="none"))]
    )
    leaves_alone("SM205", judge([op], setup=SETUP, engine=engine))


@ENGINES_WITH_DEFERRED_SQL
def test_flags_alter_field_that_makes_a_nullable_column_not_null(engine):
    op = migrations.AlterField("item", "note", models.CharField(max_length=20, default=""))
    finding = flags("SM205", judge([op], setup=SETUP, engine=engine))
    assert finding.table == "testapp_item"
    assert "note" in finding.message
    assert "post-deploy" in finding.hint


@ENGINES_WITH_DEFERRED_SQL
def test_a_db_default_only_on_the_new_field_does_not_help_the_old_code(engine):
    # The old model has null=True and no db_default: it sends NULL, not DEFAULT.
    op = migrations.AlterField("item", "note", models.CharField(max_length=20, db_default=""))
    flags("SM205", judge([op], setup=SETUP, engine=engine))


@ENGINES_WITH_DEFERRED_SQL
def test_leaves_not_null_alone_when_old_and_new_field_have_a_db_default(engine):
    op = migrations.AlterField("item", "code", models.CharField(max_length=20, db_default="x"))
    leaves_alone("SM205", judge([op], setup=SETUP, engine=engine))


@ENGINES
@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("name", models.CharField(max_length=40)),
        ("name", models.CharField(max_length=40, null=True)),
        ("note", models.CharField(max_length=40, null=True)),
    ],
    ids=["stays_not_null", "becomes_nullable", "stays_nullable"],
)
def test_leaves_other_alter_field_alone(engine, name, field):
    op = migrations.AlterField("item", name, field)
    leaves_alone("SM205", judge([op], setup=SETUP, engine=engine))


def test_leaves_an_unmanaged_model_alone():
    legacy = migrations.CreateModel(
        "Legacy",
        [("id", models.BigAutoField(primary_key=True))],
        options={"managed": False, "db_table": "legacy"},
    )
    op = migrations.AddField("legacy", "sku", models.CharField(max_length=10, default="none"))
    leaves_alone("SM205", judge([op], setup=[legacy]))


# --------------------------------------------------------------------------------------
# db_default=None is no default
# --------------------------------------------------------------------------------------


@ENGINES
def test_flags_db_default_none(engine):
    # Django renders ADD COLUMN ... DEFAULT NULL NOT NULL: no default at all.
    op = add("sku", models.IntegerField(db_default=None))
    finding = flags("SM205", judge([op], setup=SETUP, engine=engine))
    assert "the statement itself fails" in finding.message


def test_db_default_none_fails_on_postgresql_as_reported():
    # Checked on the server: with rows the statement fails, without rows the old code's
    # INSERT (which leaves the column out) does.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE scratch (id int)")
        cursor.execute("INSERT INTO scratch VALUES (1)")
        cursor.execute("SAVEPOINT s")
        with pytest.raises(IntegrityError):
            cursor.execute("ALTER TABLE scratch ADD COLUMN x integer DEFAULT NULL NOT NULL")
        cursor.execute("ROLLBACK TO SAVEPOINT s")
        cursor.execute("DELETE FROM scratch")
        cursor.execute("ALTER TABLE scratch ADD COLUMN x integer DEFAULT NULL NOT NULL")
        with pytest.raises(IntegrityError):
            cursor.execute("INSERT INTO scratch (id) VALUES (2)")


# --------------------------------------------------------------------------------------
# The migration as other sessions see it at each commit
# --------------------------------------------------------------------------------------

ADD_THEN_DEFAULT = [
    add("sku", models.IntegerField(default=0)),
    migrations.AlterField("item", "sku", models.IntegerField(default=0, db_default=0)),
]


def test_leaves_alone_a_default_set_again_later_in_the_same_transaction():
    leaves_alone("SM205", judge(ADD_THEN_DEFAULT, setup=SETUP))


def test_leaves_alone_a_default_set_again_by_runsql_in_the_same_transaction():
    ops = [
        add("sku", models.IntegerField(default=0)),
        migrations.RunSQL("ALTER TABLE testapp_item ALTER COLUMN sku SET DEFAULT 7", ""),
    ]
    leaves_alone("SM205", judge(ops, setup=SETUP))


def test_flags_the_default_set_again_after_a_commit():
    # Without the migration's transaction the DROP DEFAULT commits first: until the
    # next statement runs, the old code's INSERTs fail.
    flags("SM205", judge(ADD_THEN_DEFAULT, setup=SETUP, atomic=False))


def test_flags_a_default_dropped_again_later():
    ops = [
        *ADD_THEN_DEFAULT,
        migrations.RunSQL("ALTER TABLE testapp_item ALTER COLUMN sku DROP DEFAULT", ""),
    ]
    flags("SM205", judge(ops, setup=SETUP))


def test_the_old_code_inserts_after_the_default_set_again_on_postgresql():
    # What Django runs for ADD_THEN_DEFAULT, in one transaction, then the old code's INSERT.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE scratch (id int)")
        cursor.execute("INSERT INTO scratch VALUES (1)")
        cursor.execute("ALTER TABLE scratch ADD COLUMN sku integer DEFAULT 0 NOT NULL")
        cursor.execute("ALTER TABLE scratch ALTER COLUMN sku DROP DEFAULT")
        cursor.execute("ALTER TABLE scratch ALTER COLUMN sku SET DEFAULT 0")
        cursor.execute("INSERT INTO scratch (id) VALUES (2)")
        cursor.execute("SELECT sku FROM scratch WHERE id = 2")
        assert cursor.fetchone() == (0,)


# --------------------------------------------------------------------------------------
# Hand-written SQL is judged like the operations
# --------------------------------------------------------------------------------------


def run(sql):
    return migrations.RunSQL(sql, "")


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE testapp_item ADD COLUMN sku integer NOT NULL",
        "ALTER TABLE testapp_item ADD COLUMN sku integer DEFAULT NULL NOT NULL",
        "ALTER TABLE testapp_item ADD COLUMN sku integer NOT NULL DEFAULT 0; "
        "ALTER TABLE testapp_item ALTER COLUMN sku DROP DEFAULT",
        "ALTER TABLE public.testapp_item ADD COLUMN sku text PRIMARY KEY",
    ],
    ids=["no_default", "default_null", "default_dropped", "primary_key"],
)
def test_flags_runsql_adding_a_not_null_column_without_a_default(sql):
    finding = flags("SM205", judge([run(sql)], setup=SETUP))
    assert finding.table == "testapp_item"
    assert "sku" in finding.message


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE testapp_item ADD COLUMN sku integer NOT NULL DEFAULT 0",
        "ALTER TABLE testapp_item ADD COLUMN sku integer NULL",
        "ALTER TABLE testapp_item ADD COLUMN sku bigserial NOT NULL",
        "ALTER TABLE testapp_item ADD COLUMN sku integer GENERATED ALWAYS AS IDENTITY",
        "ALTER TABLE testapp_item ADD COLUMN sku integer GENERATED ALWAYS AS (id * 2) STORED "
        "NOT NULL",
        "CREATE TABLE fresh (id int); ALTER TABLE fresh ADD COLUMN sku integer NOT NULL",
    ],
    ids=["kept_default", "nullable", "serial", "identity", "generated", "new_table"],
)
def test_leaves_runsql_columns_old_code_can_insert_without_alone(sql):
    leaves_alone("SM205", judge([run(sql)], setup=SETUP))


def test_flags_runsql_set_not_null_on_a_column_the_old_model_writes_null_to():
    sql = "ALTER TABLE testapp_item ALTER COLUMN note SET NOT NULL"
    finding = flags("SM205", judge([run(sql)], setup=SETUP))
    assert "null=True" in finding.message


def test_flags_runsql_set_not_null_on_a_column_no_model_describes():
    sql = "ALTER TABLE testapp_item ALTER COLUMN legacy SET NOT NULL"
    finding = flags("SM205", judge([run(sql)], setup=SETUP))
    assert "no model describes" in finding.message


def test_leaves_runsql_set_not_null_alone_where_the_old_model_is_not_null():
    sql = "ALTER TABLE testapp_item ALTER COLUMN name SET NOT NULL"
    leaves_alone("SM205", judge([run(sql)], setup=SETUP))


def test_leaves_runsql_set_not_null_alone_where_the_old_field_sends_default():
    # code has null=True and db_default="x": the old code sends DEFAULT, which stays.
    sql = "ALTER TABLE testapp_item ALTER COLUMN code SET NOT NULL"
    leaves_alone("SM205", judge([run(sql)], setup=SETUP))
