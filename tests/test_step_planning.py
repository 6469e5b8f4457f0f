"""How a migration's rendered operations become steps, without a database."""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

from django_safemigrate.execution.steps import StepKind, plan_steps
from django_safemigrate.sql import OperationSQL


def _migration(atomic: bool, operations: list) -> migrations.Migration:
    migration = migrations.Migration("0002_index", "shop")
    migration.atomic = atomic
    migration.operations = operations
    return migration


def test_an_operation_a_router_makes_a_no_op_in_a_non_atomic_migration_runs_in_autocommit():
    # A tenant app's AddIndexConcurrently migrated in the public schema renders nothing
    # (the router says no), but Django's operation refuses a transaction before it asks
    # the router: run inside a transactional step, it would stop the whole run.
    operation = AddIndexConcurrently("order", models.Index(fields=["placed"], name="placed_idx"))
    migration = _migration(False, [operation])
    steps = plan_steps(migration, [OperationSQL(0, operation, ())], 15)
    assert [step.kind for step in steps] == [StepKind.AUTOCOMMIT_PYTHON]


def test_an_operation_that_renders_nothing_in_an_atomic_migration_stays_in_its_transaction():
    operation = migrations.AlterModelOptions("order", {"ordering": ["placed"]})
    migration = _migration(True, [operation])
    steps = plan_steps(migration, [OperationSQL(0, operation, ())], 15)
    assert [step.kind for step in steps] == [StepKind.TRANSACTIONAL]


def test_a_nullable_column_without_default_index_or_reference_needs_no_online_form():
    # The runner plans such a migration as one transaction without rendering it: its only
    # statement is ALTER TABLE ... ADD COLUMN ... NULL. Every other kind of new column may
    # have an online form (an index built concurrently, a constraint validated apart, a
    # default), so its migration is rendered and planned from the SQL.
    from django.db import connection

    from django_safemigrate.execution.runner import one_transaction

    def plan_free(field: models.Field) -> bool:
        migration = _migration(True, [migrations.AddField("order", "extra", field)])
        return one_transaction(migration, connection, online=True)

    assert plan_free(models.CharField(max_length=40, null=True))
    assert plan_free(models.TextField(null=True, db_comment="what it holds"))
    assert not plan_free(models.CharField(max_length=40, null=True, unique=True))
    assert not plan_free(models.CharField(max_length=40, null=True, db_index=True))
    assert not plan_free(models.SlugField(null=True))  # indexed by default
    assert not plan_free(models.CharField(max_length=40, null=True, default="x"))
    assert not plan_free(models.IntegerField(null=True, db_default=0))
    assert not plan_free(models.CharField(max_length=40, default="x"))
    assert not plan_free(models.ForeignKey("shop.customer", models.CASCADE, null=True))
    assert not plan_free(models.ManyToManyField("shop.customer"))
