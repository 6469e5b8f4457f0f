from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from django.db import ProgrammingError, connection, migrations, models, transaction
from django.db.migrations.state import ProjectState
from django.db.models.functions import Lower

from django_safemigrate.enums import Phase
from tests.rules.judge import APP, flags, judge, judge_report, leaves_alone

PLAIN = models.UniqueConstraint(fields=["name", "ref"], name="item_name_ref_uniq")
PARTIAL = models.UniqueConstraint(
    fields=["name"], condition=models.Q(active=True), name="item_active_name_uniq"
)
EXPRESSION = models.UniqueConstraint(Lower("name"), name="item_lower_name_uniq")
ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("code", models.CharField(max_length=20, unique=True)),
        ("name", models.CharField(max_length=20)),
        ("ref", models.IntegerField(null=True)),
        ("a", models.IntegerField(default=0)),
        ("b", models.IntegerField(default=0)),
        ("active", models.BooleanField(default=True)),
    ],
    options={
        "unique_together": {("a", "b"), ("a", "ref")},
        "constraints": [PLAIN, PARTIAL, EXPRESSION],
        "indexes": [models.Index(fields=["ref"], name="item_ref_idx")],
    },
)
OWNER = migrations.CreateModel(
    "Owner",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("item", models.OneToOneField("testapp.item", on_delete=models.CASCADE)),
    ],
)
LIVE = {"testapp_item": 50_000, "testapp_owner": 50_000}
#: The name PostgreSQL gives the inline UNIQUE of ``code`` in CREATE TABLE.
CODE_KEY = "testapp_item_code_key"


def only(code: str, findings: Sequence[Any]) -> list[Any]:
    return [f for f in findings if f.code == code]


# ---------------------------------------------------------------------------------------
# Flags this
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("item_name_ref_uniq", 'UniqueConstraint "item_name_ref_uniq"'),
        ("item_active_name_uniq", 'UniqueConstraint "item_active_name_uniq"'),
        ("item_lower_name_uniq", 'UniqueConstraint "item_lower_name_uniq"'),
    ],
)
def test_flags_remove_constraint_with_or_without_condition_or_expressions(name, label):
    report = judge_report([migrations.RemoveConstraint("item", name)], setup=[ITEM], tables=LIVE)
    finding = flags("SM209", report.findings)
    assert finding.severity.value == "destructive"
    assert finding.blocking
    assert finding.table == "testapp_item"
    assert finding.operation == "RemoveConstraint"
    assert finding.message.startswith(f"{label} on testapp_item is dropped")
    assert "ON CONFLICT" in finding.message
    assert "post-deploy migration" in finding.hint
    assert report.risk.value == "destructive"
    assert report.phase is Phase.POST_DEPLOY
    assert "SM209 drops a unique constraint" in report.phase_reason


def test_message_names_the_columns_and_the_django_call():
    finding = flags("SM209", judge([migrations.RemoveConstraint("item", PLAIN.name)], setup=[ITEM]))
    assert "ON CONFLICT (name, ref)" in finding.message
    assert "bulk_create(update_conflicts=True, unique_fields=['name', 'ref'])" in finding.hint
    expression = flags(
        "SM209", judge([migrations.RemoveConstraint("item", EXPRESSION.name)], setup=[ITEM])
    )
    assert "ON CONFLICT (its expressions)" in expression.message


def test_flags_unique_together_losing_a_set_only_for_that_set():
    op = migrations.AlterUniqueTogether("item", {("a", "b")})
    found = only("SM209", judge([op], setup=[ITEM]))
    assert [f.message.split(" on ")[0] for f in found] == ["unique_together ('a', 'ref')"]
    assert found[0].operation == "AlterUniqueTogether"


def test_flags_unique_true_turned_off():
    op = migrations.AlterField("item", "code", models.CharField(max_length=20))
    finding = flags("SM209", judge([op], setup=[ITEM]))
    assert finding.message.startswith("unique=True on code on testapp_item is dropped")
    assert "unique_fields=['code']" in finding.hint


def test_flags_one_to_one_becoming_a_foreign_key():
    op = migrations.AlterField(
        "owner", "item", models.ForeignKey("testapp.item", on_delete=models.CASCADE)
    )
    finding = flags("SM209", judge([op], setup=[ITEM, OWNER]))
    assert finding.table == "testapp_owner"
    assert "ON CONFLICT (item_id)" in finding.message


def test_primary_key_taken_off_a_field_that_does_not_stay_unique():
    # The primary key moves to another field: ``code`` loses its PRIMARY KEY.
    tag = migrations.CreateModel(
        "Tag",
        [
            ("code", models.CharField(max_length=20, primary_key=True)),
            ("serial", models.IntegerField(unique=True)),
        ],
    )
    moved = [
        migrations.AlterField("tag", "serial", models.IntegerField(primary_key=True)),
        migrations.AlterField("tag", "code", models.CharField(max_length=20)),
    ]
    finding = flags("SM209", judge(moved, setup=[tag]))
    assert finding.message.startswith("the primary key code on testapp_tag is dropped")
    # Taking primary_key off while keeping unique=True keeps the guarantee.
    kept = [
        migrations.AlterField("tag", "serial", models.IntegerField(primary_key=True)),
        migrations.AlterField("tag", "code", models.CharField(max_length=20, unique=True)),
    ]
    leaves_alone("SM209", judge(kept, setup=[tag]))


@pytest.mark.parametrize(
    "sql",
    [
        f"ALTER TABLE testapp_item DROP CONSTRAINT {CODE_KEY}",
        'ALTER TABLE "testapp_item" DROP CONSTRAINT IF EXISTS "item_name_ref_uniq"',
        # Django builds a conditional or expression UniqueConstraint as a unique index.
        "DROP INDEX CONCURRENTLY IF EXISTS item_active_name_uniq",
        "DROP INDEX public.item_lower_name_uniq",
    ],
)
def test_flags_handwritten_drops_of_constraints_the_state_knows(sql):
    op = migrations.SeparateDatabaseAndState(database_operations=[migrations.RunSQL(sql)])
    finding = flags("SM209", judge([op], setup=[ITEM], atomic="CONCURRENTLY" not in sql))
    assert finding.table == "testapp_item"


def test_flags_handwritten_drop_of_a_unique_together_by_djangos_name():
    # The name Django gave the constraint when it added it with ALTER TABLE.
    name = connection.SchemaEditorClass(connection, collect_sql=True)._create_index_name(
        "testapp_item", ["a", "b"], suffix="_uniq"
    )
    sql = migrations.RunSQL(f'ALTER TABLE testapp_item DROP CONSTRAINT "{name}"')
    finding = flags("SM209", judge([sql], setup=[ITEM]))
    assert finding.message.startswith("unique_together ('a', 'b')")


def test_without_a_transaction_the_replacement_must_come_first():
    drop = migrations.AlterUniqueTogether("item", {("a", "ref")})
    add = migrations.AddConstraint("item", models.UniqueConstraint(fields=["a", "b"], name="ab"))
    flags("SM209", judge([drop, add], setup=[ITEM], atomic=False))
    leaves_alone("SM209", judge([add, drop], setup=[ITEM], atomic=False))


def test_a_replacement_that_is_not_equivalent_does_not_count():
    drop = migrations.RemoveConstraint("item", PLAIN.name)
    partial = models.UniqueConstraint(
        fields=["name", "ref"], condition=models.Q(active=True), name="item_name_ref_active"
    )
    deferred = models.UniqueConstraint(
        fields=["name", "ref"], name="item_name_ref_deferred", deferrable=models.Deferrable.DEFERRED
    )
    for replacement in (partial, deferred):
        flags("SM209", judge([drop, migrations.AddConstraint("item", replacement)], setup=[ITEM]))


# ---------------------------------------------------------------------------------------
# Leaves this alone
# ---------------------------------------------------------------------------------------


def test_leaves_a_non_unique_index_alone():
    leaves_alone("SM209", judge([migrations.RemoveIndex("item", "item_ref_idx")], setup=[ITEM]))
    sql = migrations.RunSQL("DROP INDEX CONCURRENTLY IF EXISTS item_ref_idx")
    leaves_alone("SM209", judge([sql], setup=[ITEM], atomic=False))


def test_leaves_other_constraints_and_state_only_removals_alone():
    check = models.CheckConstraint(condition=models.Q(a__gte=0), name="item_a_gte_0")
    with_check = [ITEM, migrations.AddConstraint("item", check)]
    leaves_alone(
        "SM209", judge([migrations.RemoveConstraint("item", check.name)], setup=with_check)
    )
    state_only = migrations.SeparateDatabaseAndState(
        state_operations=[migrations.RemoveConstraint("item", PLAIN.name)]
    )
    leaves_alone("SM209", judge([state_only], setup=[ITEM]))


def test_leaves_a_model_created_in_the_same_migration_or_deploy_alone():
    drop = migrations.RemoveConstraint("item", PLAIN.name)
    leaves_alone("SM209", judge([ITEM, drop]))
    # Live database without the table: an earlier migration of this deploy creates it.
    leaves_alone("SM209", judge([drop], setup=[ITEM], tables={}))
    flags("SM209", judge([drop], setup=[ITEM], tables=LIVE))


def test_leaves_a_dropped_column_to_sm201():
    findings = judge([migrations.RemoveField("item", "code")], setup=[ITEM])
    flags("SM201", findings)
    leaves_alone("SM209", findings)


@pytest.mark.parametrize(
    "operations",
    [
        # unique_together rewritten as a UniqueConstraint, in either order.
        [
            migrations.AlterUniqueTogether("item", {("a", "ref")}),
            migrations.AddConstraint("item", models.UniqueConstraint(fields=["b", "a"], name="ab")),
        ],
        [
            migrations.AddConstraint("item", models.UniqueConstraint(fields=["a", "b"], name="ab")),
            migrations.AlterUniqueTogether("item", {("a", "ref")}),
        ],
        # unique=True rewritten as a UniqueConstraint.
        [
            migrations.AlterField("item", "code", models.CharField(max_length=20)),
            migrations.AddConstraint("item", models.UniqueConstraint(fields=["code"], name="c")),
        ],
        # A constraint renamed (Django removes it and adds it again).
        [
            migrations.RemoveConstraint("item", PARTIAL.name),
            migrations.AddConstraint(
                "item",
                models.UniqueConstraint(
                    fields=["name"], condition=models.Q(active=True), name="renamed"
                ),
            ),
        ],
        # Built concurrently by hand beforehand, the state told in the same operation.
        [
            migrations.SeparateDatabaseAndState(
                database_operations=[
                    migrations.RunSQL("CREATE UNIQUE INDEX ab_idx ON testapp_item (a, b)"),
                    migrations.RunSQL(
                        "ALTER TABLE testapp_item ADD CONSTRAINT ab UNIQUE USING INDEX ab_idx"
                    ),
                ],
                state_operations=[
                    migrations.AddConstraint(
                        "item", models.UniqueConstraint(fields=["a", "b"], name="ab")
                    )
                ],
            ),
            migrations.AlterUniqueTogether("item", {("a", "ref")}),
        ],
        # A redundant constraint on the same columns stays.
        [migrations.AlterField("item", "code", models.CharField(max_length=20))],
    ],
    ids=["together-then-add", "add-then-together", "unique-field", "rename", "handwritten", "kept"],
)
def test_leaves_a_constraint_replaced_by_an_equivalent_alone(operations, request):
    setup: list[Any] = [ITEM]
    if request.node.callspec.id == "kept":
        setup.append(
            migrations.AddConstraint("item", models.UniqueConstraint(fields=["code"], name="c"))
        )
    leaves_alone("SM209", judge(operations, setup=setup, tables=LIVE))


def test_leaves_an_unmanaged_model_alone():
    unmanaged = migrations.CreateModel(
        "Legacy",
        [("id", models.BigAutoField(primary_key=True)), ("code", models.CharField(max_length=9))],
        options={
            "managed": False,
            "constraints": [models.UniqueConstraint(fields=["code"], name="legacy_code")],
        },
    )
    leaves_alone(
        "SM209", judge([migrations.RemoveConstraint("legacy", "legacy_code")], setup=[unmanaged])
    )


# ---------------------------------------------------------------------------------------
# What the old code meets on the server
# ---------------------------------------------------------------------------------------


def _apply(operations: Sequence[Any], state: ProjectState) -> ProjectState:
    """Run ``operations`` on the test database (as the migration executor would)."""
    with connection.schema_editor() as editor:
        for operation in operations:
            after = state.clone()
            operation.state_forwards(APP, after)
            operation.database_forwards(APP, editor, state, after)
            state = after
    return state


def _upsert_fails(state: ProjectState, sql: str, fields: list[str]) -> str | None:
    """The SQLSTATE of the old code's ON CONFLICT and its bulk_create upsert, or None."""
    codes = set()
    for attempt in ("sql", "bulk_create"):
        try:
            with transaction.atomic():
                if attempt == "sql":
                    with connection.cursor() as cursor:
                        cursor.execute(sql)
                else:
                    model = state.apps.get_model(APP, "item")
                    values = {"code": "c1", "name": "n", "ref": 1, "a": 1, "b": 2}
                    model.objects.bulk_create(
                        [model(**values)],
                        update_conflicts=True,
                        unique_fields=fields,
                        update_fields=["active"],
                    )
        except ProgrammingError as exc:
            codes.add(getattr(exc.__cause__, "sqlstate", None))
        else:
            codes.add(None)
    assert len(codes) == 1, codes  # raw SQL and Django's upsert agree
    return codes.pop()


INSERT = (
    "INSERT INTO testapp_item (code, name, ref, a, b, active) "
    "VALUES ('c1', 'n', 1, 1, 2, true) ON CONFLICT ({}) DO NOTHING"
)


@pytest.mark.parametrize(
    ("drop", "target", "fields"),
    [
        (migrations.RemoveConstraint("item", PLAIN.name), "name, ref", ["name", "ref"]),
        (migrations.AlterUniqueTogether("item", {("a", "ref")}), "a, b", ["a", "b"]),
        (migrations.AlterField("item", "code", models.CharField(max_length=20)), "code", ["code"]),
        (
            migrations.RunSQL(f"ALTER TABLE testapp_item DROP CONSTRAINT {CODE_KEY}"),
            "code",
            ["code"],
        ),
    ],
    ids=["remove-constraint", "unique-together", "alter-field", "handwritten"],
)
def test_the_old_codes_on_conflict_works_before_the_drop_and_fails_with_42p10_after(
    drop, target, fields
):
    """The claim behind the rule, on the server: what SM209 flags breaks ON CONFLICT."""
    flags("SM209", judge([drop], setup=[ITEM], tables=LIVE))
    state = _apply([ITEM], ProjectState())
    assert _upsert_fails(state, INSERT.format(target), fields) is None
    assert _upsert_fails(state, INSERT.format(target), fields) is None  # now a conflict
    state = _apply([drop], state)
    assert _upsert_fails(state, INSERT.format(target), fields) == "42P10"


def test_on_conflict_keeps_working_across_an_equivalent_replacement():
    """And what SM209 leaves alone does not: unique_together rewritten as a constraint."""
    replace = [
        migrations.AlterUniqueTogether("item", {("a", "ref")}),
        migrations.AddConstraint("item", models.UniqueConstraint(fields=["b", "a"], name="ab")),
    ]
    leaves_alone("SM209", judge(replace, setup=[ITEM], tables=LIVE))
    state = _apply([ITEM], ProjectState())
    assert _upsert_fails(state, INSERT.format("a, b"), ["a", "b"]) is None
    state = _apply(replace, state)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'testapp_item'::regclass "
            "AND contype = 'u' AND conname = 'ab'"
        )
        assert cursor.fetchone() == (1,)
    assert _upsert_fails(state, INSERT.format("a, b"), ["a", "b"]) is None
