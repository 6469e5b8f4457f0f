"""Every disagreement explained: the classification file and how it is matched.

``disagreements.toml`` holds one ``[[disagreement]]`` per corpus case where the peer's
asserted verdict and ours differ, and ``[[rule]]`` entries that explain every disagreement
of one squawk rule that assert the same thing (``they``) at once. Each entry
records what the peer asserted (``they``) and what we said (``we``), in the vocabulary's
words, when it was classified: if either changes, the entry no longer matches and the
disagreement is unclassified again, so a change of the rules (ours or theirs) is never
explained by an old reason.

Classes:

- ``our error``: we are wrong; ``fix`` says what to change.
- ``their error``: the peer's assertion is wrong on PostgreSQL; ``verified_by`` names the
  script in ``bench/agreement/verify/`` that shows it on a real server.
- ``different concern``: both are right about different things (they judge hygiene, we
  judge compatibility; they judge one rule, we see another problem in the same SQL).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Sequence
from pathlib import Path

from agreement.vocabulary import OurVerdict, PeerVerdict, agrees, describe, describe_peer

CLASSES = ("our error", "their error", "different concern")
DISAGREEMENT_FIELDS = {"corpus", "key", "class", "they", "we", "why", "fix", "verified_by"}
RULE_FIELDS = {"corpus", "rule", "class", "they", "why", "fix", "verified_by"}


class ClassificationError(Exception):
    """The classification file is malformed; the message names the entry."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One case of a corpus: what the peer's test asserts, what we say."""

    corpus: str
    key: str
    peer: PeerVerdict
    ours: OurVerdict
    #: The squawk rule the case's assertion is about (``None`` for the migration linter).
    rule: str | None = None

    @property
    def agrees(self) -> bool:
        return agrees(self.peer, self.ours)

    @property
    def they(self) -> str:
        return describe_peer(self.peer)

    @property
    def we(self) -> str:
        return describe(self.ours.concerns)


@dataclasses.dataclass(frozen=True)
class Entry:
    corpus: str
    klass: str
    they: str
    why: str
    key: str | None = None
    rule: str | None = None
    we: str | None = None
    fix: str | None = None
    verified_by: str | None = None

    @property
    def label(self) -> str:
        return f"{self.corpus} {self.key or 'rule ' + str(self.rule)}"

    def matches(self, comparison: Comparison) -> bool:
        if self.corpus != comparison.corpus or self.they != comparison.they:
            return False
        if self.key is not None:
            return self.key == comparison.key and self.we == comparison.we
        return self.rule == comparison.rule


@dataclasses.dataclass(frozen=True)
class Outcome:
    classified: list[tuple[Comparison, Entry]]
    unclassified: list[Comparison]
    #: Entries that match no disagreement of this run (fixed, or the corpus changed).
    stale: list[Entry]

    @property
    def ok(self) -> bool:
        return not self.unclassified and not self.stale


def load(path: Path, *, verify_dir: Path) -> list[Entry]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ClassificationError(f"{path} cannot be read: {exc}") from exc
    unknown = set(raw) - {"disagreement", "rule"}
    if unknown:
        raise ClassificationError(f"{path}: unknown tables {sorted(unknown)}")
    entries = [
        _entry(item, DISAGREEMENT_FIELDS, path, verify_dir) for item in raw.get("disagreement", [])
    ] + [_entry(item, RULE_FIELDS, path, verify_dir) for item in raw.get("rule", [])]
    seen: set[tuple[str, str | None, str | None, str]] = set()
    for entry in entries:
        identity = (entry.corpus, entry.key, entry.rule, entry.they)
        if identity in seen:
            raise ClassificationError(f"{path}: {entry.label} is classified twice")
        seen.add(identity)
    return entries


def _entry(item: dict[str, object], fields: set[str], path: Path, verify_dir: Path) -> Entry:
    name = item.get("key") or item.get("rule") or "?"
    extra = set(item) - fields
    if extra:
        raise ClassificationError(f"{path}: {name}: unknown fields {sorted(extra)}")
    required = {"corpus", "class", "they", "why"} | (
        {"key", "we"} if "rule" not in fields else {"rule"}
    )
    missing = sorted(required - set(item))
    if missing:
        raise ClassificationError(f"{path}: {name}: missing {missing}")
    values = {k: str(v) for k, v in item.items()}
    klass = values.pop("class")
    if klass not in CLASSES:
        raise ClassificationError(f"{path}: {name}: class {klass!r} is not one of {CLASSES}")
    if klass == "our error" and not values.get("fix"):
        raise ClassificationError(f"{path}: {name}: an 'our error' needs a 'fix'")
    if klass == "their error":
        script = values.get("verified_by")
        if not script or not (verify_dir / script).is_file():
            raise ClassificationError(
                f"{path}: {name}: a 'their error' needs 'verified_by', a script in "
                f"{verify_dir} (got {script!r})"
            )
    return Entry(klass=klass, **values)


def classify(comparisons: Sequence[Comparison], entries: Sequence[Entry]) -> Outcome:
    """Match every disagreement to its entry (exact keys before whole rules)."""
    classified: list[tuple[Comparison, Entry]] = []
    unclassified: list[Comparison] = []
    used: set[int] = set()
    for comparison in comparisons:
        if comparison.agrees:
            continue
        match = next(
            (i for i, e in enumerate(entries) if e.key is not None and e.matches(comparison)), None
        )
        if match is None:
            match = next(
                (i for i, e in enumerate(entries) if e.rule is not None and e.matches(comparison)),
                None,
            )
        if match is None:
            unclassified.append(comparison)
        else:
            used.add(match)
            classified.append((comparison, entries[match]))
    corpora = {c.corpus for c in comparisons}
    stale = [e for i, e in enumerate(entries) if i not in used and e.corpus in corpora]
    return Outcome(classified, unclassified, stale)


def template(comparison: Comparison) -> str:
    """A TOML entry to fill in for an unclassified disagreement."""
    return (
        "[[disagreement]]\n"
        f'corpus = "{comparison.corpus}"\n'
        f'key = "{comparison.key}"\n'
        'class = "our error | their error | different concern"\n'
        f'they = "{comparison.they}"\n'
        f'we = "{comparison.we}"\n'
        'why = "…"\n'
    )
