"""One vocabulary for three linters' verdicts, and when two verdicts agree.

Each tool says different things in different words: django-migration-linter says a
migration is valid, has warnings, or is invalid (backward incompatible); squawk says one
rule fires or not; ``checkmigrations`` gives findings with rule codes. Here every verdict
becomes a set of **concerns** (what it flags), and a peer's assertion also says which
concerns it **clears** (says are absent):

- a lock hazard: reads or writes blocked for a time that grows with the table (a scan,
  rewrite or index build under a strong lock);
- a backward-incompatible change: the old code still running breaks;
- data loss;
- a transaction hazard: the statements fail or half-apply because of where the
  transaction boundaries are;
- a statement that fails when it runs;
- needs review: a data migration, an irreversible or opaque operation;
- hygiene: conventions with no effect on a live table (squawk's preferences; no rule of
  ours judges them).

A peer flagging concerns F agrees with us when we flag at least one of F; a peer
clearing concerns C agrees when we flag none of C. A squawk test runs one rule, so its
``lint_ok`` clears only that rule's concerns and says nothing of the others.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping


class Concern(enum.Enum):
    LOCK = "lock hazard"
    COMPAT = "backward-incompatible change"
    DATA_LOSS = "data loss"
    TRANSACTION = "transaction hazard"
    FAILS = "statement that fails"
    REVIEW = "needs review"
    HYGIENE = "hygiene"


L, C, D, T, F, R, H = (
    Concern.LOCK,
    Concern.COMPAT,
    Concern.DATA_LOSS,
    Concern.TRANSACTION,
    Concern.FAILS,
    Concern.REVIEW,
    Concern.HYGIENE,
)

#: What each of our rules flags (docs/rules.md).
OURS: Mapping[str, frozenset[Concern]] = {
    **{f"SM1{n:02d}": frozenset({L}) for n in range(1, 13)},
    "SM201": frozenset({D, C}),
    "SM202": frozenset({D, C}),
    "SM203": frozenset({C}),
    "SM204": frozenset({C}),
    "SM205": frozenset({C}),
    "SM206": frozenset({D}),
    "SM207": frozenset({L}),
    "SM208": frozenset({D}),
    "SM209": frozenset({C}),
    "SM301": frozenset({T}),
    "SM302": frozenset({T}),
    "SM303": frozenset({T}),
    "SM304": frozenset({T}),
    "SM401": frozenset({R}),
    "SM402": frozenset({R}),
    "SM403": frozenset({F}),
    "SM404": frozenset({R}),
}

#: What each squawk rule flags (its docs/docs/<rule>.md, "problem").
SQUAWK: Mapping[str, frozenset[Concern]] = {
    "adding-field-with-default": frozenset({L}),
    "adding-foreign-key-constraint": frozenset({L}),
    "adding-not-nullable-field": frozenset({L}),
    "adding-required-field": frozenset({C}),
    "adding-serial-primary-key-field": frozenset({L}),
    "ban-alter-domain-with-add-constraint": frozenset({L}),
    "ban-char-field": frozenset({H}),
    "ban-concurrent-index-creation-in-transaction": frozenset({T}),
    "ban-create-domain-with-constraint": frozenset({H}),
    "ban-drop-column": frozenset({C, D}),
    "ban-drop-database": frozenset({D}),
    "ban-drop-not-null": frozenset({C}),
    "ban-drop-table": frozenset({C, D}),
    "ban-duplicate-column-assignments": frozenset({F}),
    "ban-truncate-cascade": frozenset({D}),
    "ban-uncommitted-transaction": frozenset({T}),
    "changing-column-type": frozenset({L}),
    "constraint-missing-not-valid": frozenset({L}),
    "disallowed-unique-constraint": frozenset({L}),
    "identifier-too-long": frozenset({H}),
    "prefer-bigint-over-int": frozenset({H}),
    "prefer-bigint-over-smallint": frozenset({H}),
    "prefer-identity": frozenset({H}),
    "prefer-repack": frozenset({L}),
    "prefer-robust-stmts": frozenset({H}),
    "prefer-text-field": frozenset({H}),
    "prefer-timestamp-tz": frozenset({H}),
    "renaming-column": frozenset({C}),
    "renaming-table": frozenset({C}),
    "require-concurrent-index-creation": frozenset({L}),
    "require-concurrent-index-deletion": frozenset({L}),
    "require-concurrent-partition-detach": frozenset({L}),
    "require-concurrent-reindex": frozenset({L}),
    "require-enum-value-ordering": frozenset({H}),
    "require-lock-timeout": frozenset({H}),
    "require-statement-timeout": frozenset({H}),
    "require-table-schema": frozenset({H}),
    "require-timeout-settings": frozenset({H}),
    "transaction-nesting": frozenset({T}),
}

#: What each django-migration-linter check flags (its sql_analyser and RunPython checks).
#: Its errors are backward-incompatibility checks; its warnings, lock and review notes.
LINTER: Mapping[str, frozenset[Concern]] = {
    "NOT_NULL": frozenset({C}),
    "DROP_COLUMN": frozenset({C, D}),
    "DROP_TABLE": frozenset({C, D}),
    "RENAME_COLUMN": frozenset({C}),
    "RENAME_TABLE": frozenset({C}),
    "ALTER_COLUMN": frozenset({C}),
    "ADD_UNIQUE": frozenset({C}),
    "CREATE_INDEX": frozenset({L}),
    "CREATE_INDEX_EXCLUSIVE": frozenset({L}),
    "DROP_INDEX": frozenset({L}),
    "REINDEX": frozenset({L}),
    "RUNPYTHON_REVERSIBLE": frozenset({R}),
    "RUNPYTHON_ARGS_NAMING_CONVENTION": frozenset({H}),
    "RUNPYTHON_MODEL_IMPORT": frozenset({H}),
    "RUNPYTHON_MODEL_VARIABLE_NAME": frozenset({H}),
}
#: The concerns of the linter's errors: "no errors" clears these.
LINTER_ERRORS = frozenset({C, D})

UNSAFE = ("risky", "destructive")


@dataclasses.dataclass(frozen=True)
class PeerVerdict:
    """What a peer's test suite asserts about one migration or fixture."""

    flags: frozenset[Concern]
    clears: frozenset[Concern]
    #: The assertion in the peer's words (``invalid``, ``lint_errors(changing-column-type)``).
    said: str
    #: Where the test suite asserts it.
    where: str


@dataclasses.dataclass(frozen=True)
class OurVerdict:
    """What ``checkmigrations`` says: the concerns of the findings that count."""

    concerns: frozenset[Concern]
    #: Rule codes of the findings that count, sorted.
    codes: tuple[str, ...]
    #: Findings reported but not counted (severity safe, or a new table), for the listing.
    uncounted: tuple[str, ...] = ()


def our_verdict(findings: Iterable[Mapping[str, object]]) -> OurVerdict:
    """Our verdict from the ``findings`` of ``checkmigrations --format json``.

    A finding counts when its severity is risky or destructive and it blocks (it is not
    about a table created in the same migration or a small one).
    """
    counted: set[str] = set()
    uncounted: set[str] = set()
    for finding in findings:
        code = str(finding["code"])
        if code not in OURS:
            raise KeyError(
                f"checkmigrations reported {code}, which the agreement vocabulary does not "
                "map: add it to OURS in bench/agreement/vocabulary.py"
            )
        if finding["severity"] in UNSAFE and finding.get("blocking", True):
            counted.add(code)
        else:
            uncounted.add(code)
    concerns = frozenset(c for code in counted for c in OURS[code])
    return OurVerdict(concerns, tuple(sorted(counted)), tuple(sorted(uncounted - counted)))


def merge(verdicts: Iterable[OurVerdict]) -> OurVerdict:
    """One verdict for several migrations (a squawk fixture split at its transactions)."""
    items = list(verdicts)
    codes = sorted({c for v in items for c in v.codes})
    uncounted = sorted({c for v in items for c in v.uncounted} - set(codes))
    return OurVerdict(
        frozenset(c for v in items for c in v.concerns), tuple(codes), tuple(uncounted)
    )


def agrees(peer: PeerVerdict, ours: OurVerdict) -> bool:
    flagged = not peer.flags or bool(peer.flags & ours.concerns)
    cleared = not (peer.clears & ours.concerns)
    return flagged and cleared


def describe(concerns: Iterable[Concern]) -> str:
    """``flags a lock hazard, data loss`` or ``passes``."""
    names = sorted(c.value for c in concerns)
    return "flags " + ", ".join(names) if names else "passes"


def describe_peer(peer: PeerVerdict) -> str:
    if peer.flags:
        return describe(peer.flags)
    return "passes (" + ", ".join(sorted(c.value for c in peer.clears)) + ")"


def describe_ours(ours: OurVerdict) -> str:
    text = describe(ours.concerns)
    return f"{text} ({', '.join(ours.codes)})" if ours.codes else text


def squawk_peer(rule: str, expects_error: bool, where: str) -> PeerVerdict:
    if rule not in SQUAWK:
        raise KeyError(
            f"squawk rule {rule!r} has no concern in the agreement vocabulary: add it to "
            "SQUAWK in bench/agreement/vocabulary.py"
        )
    concerns = SQUAWK[rule]
    call = "lint_errors" if expects_error else "lint_ok"
    return PeerVerdict(
        flags=concerns if expects_error else frozenset(),
        clears=frozenset() if expects_error else concerns,
        said=f"{call}({rule})",
        where=where,
    )
