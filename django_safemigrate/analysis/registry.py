"""Rules and how they register.

A rule is a module in ``analysis/rules/`` named ``smNNN_<name>.py``. Its module
docstring is its documentation (the first paragraph is the summary); it creates
one :class:`Rule` and registers check functions with decorators::

    rule = Rule(code="SM101", name="add-index-blocks-writes", severity=Risk.RISKY,
                doc=__doc__)

    @rule.on_statement(ast.IndexStmt)
    def check(node: ast.IndexStmt, ctx: StatementContext) -> Iterator[Hit]:
        ...

Statement checks receive pglast parse-tree nodes of the statements an operation
runs; operation checks receive the Django operation itself, for what SQL cannot
show (backward compatibility, data migrations).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django_safemigrate.enums import Kind, Risk

if TYPE_CHECKING:
    from django_safemigrate.analysis.context import (
        MigrationContext,
        OperationContext,
        StatementContext,
    )
    from django_safemigrate.analysis.findings import Hit

StatementCheck = Callable[[Any, "StatementContext"], Iterable["Hit"]]
OperationCheck = Callable[[Any, "OperationContext"], Iterable["Hit"]]
MigrationCheck = Callable[["MigrationContext"], Iterable["Hit"]]

_CODE = re.compile(r"^SM[1-9]\d\d$")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclasses.dataclass
class Rule:
    code: str
    name: str
    severity: Risk
    doc: str | None
    #: What its findings put at risk (a hit may say otherwise: ``Hit.kinds``). Every rule
    #: about migrations has at least one; project problems (SM9xx) have none.
    kinds: tuple[Kind, ...] = ()
    statement_checks: list[tuple[tuple[type, ...], StatementCheck]] = dataclasses.field(
        default_factory=list
    )
    operation_checks: list[tuple[tuple[type, ...], OperationCheck]] = dataclasses.field(
        default_factory=list
    )
    migration_checks: list[MigrationCheck] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise ValueError(f"Rule code {self.code!r} is not of the form SMnnn.")
        if not _NAME.match(self.name):
            raise ValueError(f"Rule name {self.name!r} is not kebab-case.")
        if not self.doc or not self.doc.strip():
            raise ValueError(f"Rule {self.code} has no documentation (module docstring).")
        if not self.kinds and not self.code.startswith("SM9"):
            raise ValueError(f"Rule {self.code} names no kinds (what its findings risk).")

    @property
    def summary(self) -> str:
        return inspect.cleandoc(self.doc or "").split("\n\n")[0].replace("\n", " ")

    @property
    def documentation(self) -> str:
        return inspect.cleandoc(self.doc or "")

    def on_statement(self, *node_types: type) -> Callable[[StatementCheck], StatementCheck]:
        def register(func: StatementCheck) -> StatementCheck:
            self.statement_checks.append((node_types, func))
            return func

        return register

    def on_operation(self, *operation_types: type) -> Callable[[OperationCheck], OperationCheck]:
        def register(func: OperationCheck) -> OperationCheck:
            self.operation_checks.append((operation_types, func))
            return func

        return register

    def on_migration(self, func: MigrationCheck) -> MigrationCheck:
        """A check that looks at the whole migration (its statements together)."""
        self.migration_checks.append(func)
        return func


_REGISTRY: dict[str, Rule] | None = None


def rules() -> dict[str, Rule]:
    """Every rule, by code, in code order (rule modules are imported once)."""
    global _REGISTRY  # noqa: PLW0603 - a lazily built, read-only registry
    if _REGISTRY is None:
        from django_safemigrate.analysis import rules as package

        found: dict[str, Rule] = {}
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            rule = getattr(module, "rule", None)
            if not isinstance(rule, Rule):
                raise TypeError(f"Rule module {module.__name__} defines no `rule = Rule(...)`.")
            if rule.code in found:
                raise ValueError(f"Rule code {rule.code} is used twice.")
            found[rule.code] = rule
        _REGISTRY = dict(sorted(found.items()))
    return _REGISTRY


def iter_statement_checks(node: Any) -> Iterator[tuple[Rule, StatementCheck]]:
    for rule in rules().values():
        for types, check in rule.statement_checks:
            if isinstance(node, types):
                yield rule, check


def iter_operation_checks(operation: Any) -> Iterator[tuple[Rule, OperationCheck]]:
    for rule in rules().values():
        for types, check in rule.operation_checks:
            if isinstance(operation, types):
                yield rule, check


def iter_migration_checks() -> Iterator[tuple[Rule, MigrationCheck]]:
    for rule in rules().values():
        for check in rule.migration_checks:
            yield rule, check
