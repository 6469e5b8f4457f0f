from __future__ import annotations

import pytest
from django.contrib.postgres.constraints import ExclusionConstraint
from django.db import migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

# The zero-downtime backend warns about the operations it cannot make safe; the
# rules judge the SQL it emits regardless.
pytestmark = pytest.mark.filterwarnings(
    "ignore::django_zero_downtime_migrations.backends.postgres.schema.UnsafeOperationWarning"
)


ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("ref", models.IntegerField(null=True)),
    ],
)
UNIQUE = models.UniqueConstraint(fields=["name", "ref"], name="item_name_ref_uniq")
BOTH = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


@BOTH
def test_add_unique_constraint(engine):
    findings = judge([migrations.AddConstraint("item", UNIQUE)], setup=[ITEM], engine=engine)
    if engine == ZERO_DOWNTIME:
        # CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX.
        leaves_alone("SM103", findings)
        return
    finding = flags("SM103", findings)
    assert finding.table == "testapp_item"
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is False
    assert finding.sql.startswith('ALTER TABLE "testapp_item" ADD CONSTRAINT')
    assert (
        'CREATE UNIQUE INDEX CONCURRENTLY "item_name_ref_uniq" ON "testapp_item" '
        '("name", "ref")' in finding.hint
    )
    assert 'UNIQUE USING INDEX "item_name_ref_uniq"' in finding.hint
    assert "atomic = False" in finding.hint


@BOTH
def test_alter_field_to_unique(engine):
    field = models.IntegerField(null=True, unique=True)
    findings = judge([migrations.AlterField("item", "ref", field)], setup=[ITEM], engine=engine)
    if engine == ZERO_DOWNTIME:
        leaves_alone("SM103", findings)
    else:
        flags("SM103", findings)


@BOTH
def test_unique_together(engine):
    op = migrations.AlterUniqueTogether("item", {("name", "ref")})
    findings = judge([op], setup=[ITEM], engine=engine)
    if engine == ZERO_DOWNTIME:
        leaves_alone("SM103", findings)
    else:
        flags("SM103", findings)


@BOTH
def test_new_unique_column(engine):
    field = models.IntegerField(null=True, unique=True)
    findings = judge([migrations.AddField("item", "serial", field)], setup=[ITEM], engine=engine)
    if engine == ZERO_DOWNTIME:
        # ADD COLUMN, then the unique index concurrently and ADD CONSTRAINT ... USING INDEX.
        leaves_alone("SM103", findings)
        return
    finding = flags("SM103", findings)
    assert finding.sql == 'ALTER TABLE "testapp_item" ADD COLUMN "serial" integer NULL UNIQUE'
    assert finding.hint.startswith("Add the column without UNIQUE first")


@BOTH
def test_exclusion_constraint_has_no_online_alternative(engine):
    constraint = ExclusionConstraint(name="item_ref_excl", expressions=[("ref", "=")])
    findings = judge([migrations.AddConstraint("item", constraint)], setup=[ITEM], engine=engine)
    # The zero-downtime backend only warns: it emits the same ALTER TABLE ... EXCLUDE.
    finding = flags("SM103", findings)
    assert "EXCLUDE" in finding.message
    assert "no online way" in finding.hint


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("alter table testapp_item add constraint u unique (name)", "UNIQUE"),
        ("ALTER TABLE  testapp_item\n  ADD UNIQUE NULLS NOT DISTINCT (ref)", "UNIQUE"),
        ('ALTER TABLE "testapp_item" ADD PRIMARY KEY (ref)', "PRIMARY KEY"),
        ("ALTER TABLE testapp_item ADD COLUMN code int PRIMARY KEY", "PRIMARY KEY"),
    ],
)
def test_flags_handwritten_sql(sql, kind):
    finding = flags("SM103", judge([migrations.RunSQL(sql)], setup=[ITEM]))
    assert f"ADD {kind}" in finding.message


def test_hint_keeps_what_the_constraint_says():
    sql = "ALTER TABLE testapp_item ADD UNIQUE NULLS NOT DISTINCT (ref) DEFERRABLE"
    hint = flags("SM103", judge([migrations.RunSQL(sql)], setup=[ITEM])).hint
    assert 'ON "testapp_item" ("ref") NULLS NOT DISTINCT' in hint
    assert '"testapp_item_ref_key" UNIQUE USING INDEX "testapp_item_ref_key" DEFERRABLE' in hint


def test_primary_key_hint_asks_for_not_null_first():
    sql = migrations.RunSQL("ALTER TABLE testapp_item ADD CONSTRAINT pk PRIMARY KEY (ref)")
    hint = flags("SM103", judge([sql], setup=[ITEM])).hint
    assert "SM106" in hint
    assert 'PRIMARY KEY USING INDEX "pk"' in hint


def test_leaves_constraints_using_an_existing_index_alone():
    sql = migrations.RunSQL(
        [
            "CREATE UNIQUE INDEX CONCURRENTLY i ON testapp_item (name)",
            "ALTER TABLE testapp_item ADD CONSTRAINT u UNIQUE USING INDEX i",
            "alter table testapp_item add constraint p primary key using index i",
        ]
    )
    leaves_alone("SM103", judge([sql], setup=[ITEM], atomic=False))


def test_leaves_other_constraints_alone():
    sql = migrations.RunSQL("ALTER TABLE testapp_item ADD CONSTRAINT c CHECK (ref > 0)")
    leaves_alone("SM103", judge([sql], setup=[ITEM]))


def test_leaves_a_table_created_in_the_same_migration_alone():
    findings = judge([ITEM, migrations.AddConstraint("item", UNIQUE)])
    leaves_alone("SM103", findings)
