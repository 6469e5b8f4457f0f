"""Domain errors. Commands turn each into a message and its documented exit code."""

from __future__ import annotations

from django_safemigrate.enums import ExitCode


class SafemigrateError(Exception):
    """Base class; ``exit_code`` is what a command exits with when this reaches it."""

    exit_code: ExitCode = ExitCode.FAILED


class UsageError(SafemigrateError):
    """Bad arguments, settings or files: nothing was touched."""

    exit_code = ExitCode.USAGE


class DatabaseUnavailable(UsageError):
    """The database cannot be reached or refuses the credentials."""


class BrokenMigration(UsageError):
    """A migration module cannot be imported or its graph is inconsistent."""


class InconsistentHistory(UsageError):
    """``django_migrations`` records a migration as applied while a dependency of it is not."""


class LedgerMissing(UsageError):
    """The ledger's tables are gone although ``django_migrations`` says they were created."""


class OlderPackageHistory(UsageError):
    """``django_migrations`` holds the older django-safemigrate package's ``0001_initial``."""


class LockTimeout(SafemigrateError):
    """The migration lock stayed with another runner for longer than the wait time."""

    exit_code = ExitCode.LOCK_TIMEOUT


class LockLost(SafemigrateError):
    """The migration lock's session ended, or stopped holding the lock, during the run.

    Nothing runs after the loss is noticed; the run is recorded as interrupted.
    """

    exit_code = ExitCode.LOCK_TIMEOUT


class Blocked(SafemigrateError):
    """Governance refuses to apply the plan; nothing was applied."""

    exit_code = ExitCode.BLOCKED


class MigrationFailed(SafemigrateError):
    """A migration raised while being applied; the message says what its failed step left."""

    exit_code = ExitCode.FAILED
