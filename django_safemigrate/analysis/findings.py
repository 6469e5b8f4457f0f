"""Values the analysis produces: findings, and a report per migration."""

from __future__ import annotations

import dataclasses
from typing import Any

from django_safemigrate.enums import Kind, LockMode, Phase, Risk


@dataclasses.dataclass(frozen=True)
class Hit:
    """What a rule check returns: one problem it saw. The analyser adds where it was."""

    message: str
    hint: str
    table: str | None = None
    lock: LockMode | None = None
    rewrites_table: bool | None = None
    #: Overrides the rule's severity for this hit (e.g. a lossy type change).
    severity: Risk | None = None
    #: ``False`` when the hit concerns only a table created in the same migration
    #: or a table known to be small: reported, but it does not fail the build.
    blocking: bool = True
    #: For migration-level checks: the operation the hit is about.
    operation_index: int | None = None
    #: Overrides the rule's kinds for this hit (a type change that can only fail, say).
    kinds: tuple[Kind, ...] | None = None


@dataclasses.dataclass(frozen=True)
class TableInfo:
    """Size of a table on the connected database (``pg_class`` estimates)."""

    name: str
    rows: int
    bytes: int

    def describe(self) -> str:
        return f"~{self.rows:,} rows, {_human_bytes(self.bytes)}"


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError  # pragma: no cover


@dataclasses.dataclass(frozen=True)
class Finding:
    """One rule firing on one operation."""

    code: str
    rule: str
    severity: Risk
    message: str
    hint: str
    operation_index: int | None = None
    operation: str | None = None
    line: int | None = None
    table: str | None = None
    lock: LockMode | None = None
    rewrites_table: bool | None = None
    sql: str | None = None
    blocking: bool = True
    table_rows: int | None = None
    table_bytes: int | None = None
    #: The reason given in the migration file when the finding is acknowledged.
    acknowledged: str | None = None
    #: How ``safemigrate`` runs the statement instead, when it runs it online: its steps
    #: (``{"steps": [{"purpose", "transactional", "sql"}], "note"}``). Such a finding is
    #: reported and does not block.
    online: dict[str, Any] | None = None
    #: Locks that earlier statements of the same transaction still hold while this
    #: statement runs (``{"table", "lock", "operation_index", "sql"}``).
    held_locks: tuple[dict[str, Any], ...] = ()
    #: What the finding puts at risk (``Kind`` values, the rule's unless the hit said).
    kinds: tuple[Kind, ...] = ()

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "rule": self.rule,
            "severity": self.severity.value,
            "kinds": [kind.value for kind in self.kinds],
            "operation_index": self.operation_index,
            "operation": self.operation,
            "line": self.line,
            "table": self.table,
            "lock": self.lock.value if self.lock else None,
            "rewrites_table": self.rewrites_table,
            "sql": self.sql,
            "message": self.message,
            "hint": self.hint,
            "blocking": self.blocking,
            "acknowledged": self.acknowledged,
        }
        if self.table_rows is not None:
            data["table_rows"] = self.table_rows
            data["table_bytes"] = self.table_bytes
        if self.online is not None:
            data["online"] = self.online
        if self.held_locks:
            data["held_locks"] = list(self.held_locks)
        return data


@dataclasses.dataclass(frozen=True)
class Problem:
    """A project-level problem (SM9xx): not tied to one operation."""

    code: str
    message: str
    path: str | None = None
    line: int | None = None
    app_label: str | None = None
    name: str | None = None
    #: What to do about it, when the message does not say.
    hint: str | None = None
    #: The installed package (distribution and version) whose migrations it is about, when
    #: it is not the project's own: shown, not failing (README, "Scope").
    package: str | None = None

    @property
    def text(self) -> str:
        """The message and the hint, as one paragraph."""
        return f"{self.message} {self.hint}" if self.hint else self.message

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            data["hint"] = self.hint
        if self.path:
            data["path"] = self.path
        if self.line:
            data["line"] = self.line
        if self.app_label:
            data["app_label"] = self.app_label
            data["name"] = self.name
        data["package"] = self.package
        return data


@dataclasses.dataclass(frozen=True)
class MigrationReport:
    """Everything the analysis says about one migration."""

    app_label: str
    name: str
    path: str | None
    checksum: str
    applied: bool
    atomic: bool
    findings: tuple[Finding, ...]
    phase: Phase = Phase.PRE_DEPLOY
    phase_reason: str = ""
    #: What each operation runs on the database (for the review screen).
    operations: tuple[Any, ...] = dataclasses.field(default=(), compare=False, repr=False)
    #: The online plans of the operations that run online (by operation index;
    #: :class:`django_safemigrate.online.rewrite.OnlineOperation`).
    online: dict[int, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    #: The installed package (distribution and version) the migration comes with, when it
    #: is not the project's own (``django_safemigrate.scope``): its findings are shown, but
    #: neither fail ``checkmigrations`` nor make the migration need a review.
    package: str | None = None
    #: ``False`` for a package's migration the settings leave out of scope: shown, but it
    #: fails nothing and needs no review (set by :func:`django_safemigrate.scope.scoped`).
    governed: bool = True

    @property
    def risk(self) -> Risk:
        """The highest severity among findings that matter on a live table.

        Acknowledged findings still count (an acknowledgement explains, it does not
        make a migration safer); findings about a new or small table do not.
        """
        return Risk.highest(f.severity for f in self.findings if f.blocking)

    @property
    def kinds(self) -> frozenset[Kind]:
        """What the findings that make up :attr:`risk` put at risk."""
        return frozenset(kind for f in self.findings if f.blocking for kind in f.kinds)

    def counted(self) -> tuple[Finding, ...]:
        """Findings that count against the migration (not acknowledged, blocking)."""
        return tuple(f for f in self.findings if f.acknowledged is None and f.blocking)
