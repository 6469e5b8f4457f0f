"""``reviewmigration``: approve or reject a migration from a terminal.

The same decision, permission check and record as the admin's review screen.
The decision is bound to the checksum of the migration file as it is here.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections
from django.utils import timezone

from django_safemigrate.conf import get_settings
from django_safemigrate.enums import CommandLineReviews, Decision, Direction
from django_safemigrate.exceptions import SafemigrateError, UsageError
from django_safemigrate.execution.ledger import os_user
from django_safemigrate.execution.run import connect, postgres_connection
from django_safemigrate.plan import (
    SharedDiskLoader,
    load_disk_migrations,
    sharing_disk_scan,
    validate_selection,
)


class Command(BaseCommand):
    help = (
        "Approve or reject a migration (as the admin's review screen does), bound to the "
        "checksum of its file here. Needs the 'Can approve or reject migrations' permission. "
        "Exit codes: 0 recorded, 2 bad usage (unknown migration or user, missing permission, "
        "empty note, decisions from the command line turned off; nothing recorded)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label")
        parser.add_argument("migration_name", help="The migration's name (or a unique prefix).")
        decision = parser.add_mutually_exclusive_group(required=True)
        decision.add_argument("--approve", action="store_true")
        decision.add_argument("--reject", action="store_true")
        parser.add_argument("--note", required=True, help="Why (kept with the decision).")
        parser.add_argument(
            "--rollback",
            action="store_true",
            help="Decide on unapplying the migration (a governed rollback), not on applying it.",
        )
        parser.add_argument(
            "--as",
            dest="username",
            required=True,
            metavar="USERNAME",
            help="The reviewer's user name: an active user with the permission. Whoever can "
            "run this command can name any such user, so the OS user and host running it are "
            "recorded with the decision (see SAFEMIGRATE['COMMAND_LINE_REVIEWS']).",
        )
        parser.add_argument("--database", default="default", choices=tuple(connections))

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with sharing_disk_scan():
                self.review(**options)
        except SafemigrateError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from exc

    def review(self, **options: Any) -> None:
        from django_safemigrate.governance import store
        from django_safemigrate.governance.judge import judge
        from django_safemigrate.governance.snapshot import snapshot_fields
        from django_safemigrate.models import GovernedMigration

        loader = load_disk_migrations("Nothing was recorded.")
        chosen = validate_selection(
            loader, options["app_label"], options["migration_name"], "Nothing was recorded."
        )
        assert chosen.app_label is not None
        assert chosen.migration_name is not None
        migration = loader.get_migration_by_prefix(chosen.app_label, chosen.migration_name)
        key = (migration.app_label, migration.name)
        note = options["note"].strip()
        if not note:
            raise UsageError("--note must say why; nothing was recorded.")
        wanted = Decision.APPROVE if options["approve"] else Decision.REJECT
        refuse_by_setting(get_settings().command_line_reviews, wanted)
        connection = postgres_connection(options["database"])
        connect(connection)
        if "django_safemigrate_review" not in connection.introspection.table_names():
            raise UsageError(
                "django_safemigrate's tables do not exist on this database yet; run "
                "'manage.py safemigrate' (or migrate) once first. Nothing was recorded."
            )
        user = self.reviewer(options["username"])

        # Judge the migration as it is here, so the record shows what was reviewed.
        # The same scan of the migration files, now with what this database has applied.
        live = SharedDiskLoader(connection)
        direction = Direction.BACKWARD if options["rollback"] else Direction.FORWARD
        judged = judge(
            connection,
            live,
            [(live.graph.nodes[key], direction is Direction.BACKWARD)],
            # The gate on whatever the mode says: a review is recorded in every mode.
            dataclasses.replace(get_settings(), govern=True, govern_fresh_database=True),
            phase=None,
            apply_unblocked=True,
            history_readable=True,
        )
        assert judged is not None
        report = judged.reports[key]
        decision = judged.result.decisions[0]
        fields = snapshot_fields(
            report,
            migration,
            connection=connection,
            pg_version=judged.pg_version,
            settings=judged.settings,
            sizes=judged.sizes,
        )
        previous = (
            GovernedMigration.objects.using(connection.alias)
            .filter(app_label=key[0], name=key[1], direction=direction.value)
            .values_list("checksum", flat=True)
            .first()
        )
        store.record_gate(
            connection.alias,
            decision,
            fields,
            now=timezone.now(),
            applied=(key in live.applied_migrations) is (direction is Direction.FORWARD),
            direction=direction,
        )
        governed = GovernedMigration.objects.using(connection.alias).get(
            app_label=key[0], name=key[1], direction=direction.value
        )
        if previous and previous != report.checksum and options["verbosity"] >= 1:
            self.stderr.write(
                f"Note: the file differs from the version safemigrate last saw ({previous}); "
                f"this decision is for the file here ({report.checksum})."
            )
        try:
            decided = store.decide_migration(
                governed,
                user=user,
                decision=wanted,
                note=note,
                source="command",
                checksum=report.checksum,
                os_user=os_user(),
                host=socket.gethostname(),
            )
        except PermissionDenied as exc:
            raise UsageError(f"{exc} Nothing was recorded.") from exc
        except DatabaseError as exc:
            raise CommandError(f"The decision could not be recorded: {exc}") from exc
        verb = "Approved" if wanted is Decision.APPROVE else "Rejected"
        if direction is Direction.BACKWARD:
            verb += " unapplying"
        self.stdout.write(
            f"{verb} {key[0]}.{key[1]} ({report.risk.value}, {report.checksum}) as "
            f"{user.get_username()} (recorded from {decided.review.os_user}@"
            f"{decided.review.host}): {note}"
        )
        self.stdout.write(f"Review state: {decided.state.value}.")

    def reviewer(self, username: str) -> Any:
        """The user ``--as`` names; the store checks that it is active and may decide."""
        model = get_user_model()
        try:
            return model._default_manager.get_by_natural_key(username)
        except model.DoesNotExist:
            raise UsageError(f"There is no user {username!r}. Nothing was recorded.") from None


def refuse_by_setting(allowed: CommandLineReviews, wanted: Decision) -> None:
    """Stop (exit 2) when ``SAFEMIGRATE['COMMAND_LINE_REVIEWS']`` keeps ``wanted`` to the admin."""
    if allowed is CommandLineReviews.ALLOW:
        return
    if allowed is CommandLineReviews.REJECT_ONLY and wanted is Decision.REJECT:
        return
    what = "decisions" if allowed is CommandLineReviews.OFF else "approvals"
    raise UsageError(
        f"This project takes no {what} from the command line "
        f"(SAFEMIGRATE['COMMAND_LINE_REVIEWS'] = {allowed.value!r}): whoever can run "
        "management commands could name any reviewer with --as. Approve or reject the "
        "migration in the Django admin, logged in as yourself. Nothing was recorded."
    )
