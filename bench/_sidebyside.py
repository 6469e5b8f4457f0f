"""What ``overhead.py`` and ``deploy.py`` share: Django's core ``migrate``, the override and
``safemigrate`` timed side by side, round after round, and the tables of their results."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence

#: Django's core ``migrate`` command class, ``manage.py migrate`` (the override) and
#: ``manage.py safemigrate``.
VARIANTS = ("django", "migrate", "safemigrate")
#: The most the override and ``safemigrate`` may cost, as a ratio to Django's ``migrate``.
TARGET_RATIO = 1.10
MEASUREMENTS = {"wall": "wall-clock", "command": "in-command", "cpu": "in-command CPU"}
SHORT_NAMES = {
    "django": "Django's `migrate`",
    "migrate": "`migrate` (override)",
    "safemigrate": "`safemigrate`",
}


class BenchmarkError(RuntimeError):
    """A step failed or gave a result that cannot be trusted; the benchmark stops."""


@dataclasses.dataclass(frozen=True)
class Sample:
    round: int  # 0-based, warm-up rounds included
    variant: str
    wall: float
    command: float
    cpu: float  # CPU time of the child's own process during the command
    applied: int | None = None  # rows in django_migrations afterwards, where counted


@dataclasses.dataclass(frozen=True)
class Stats:
    median: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(statistics.median(values), min(values), max(values))


@dataclasses.dataclass(frozen=True)
class SideBySide:
    """The measured rounds (warm-up rounds left out) and how they compare with Django's."""

    samples: list[Sample]
    rounds: int
    warmup: int
    seed: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    def stats(self, variant: str, field: str) -> Stats:
        return Stats.of([getattr(s, field) for s in self.samples if s.variant == variant])

    def ratio(self, variant: str, field: str) -> float:
        return self.stats(variant, field).median / self.stats("django", field).median

    def min_ratio(self, variant: str, field: str) -> float:
        return self.stats(variant, field).minimum / self.stats("django", field).minimum

    def paired_ratio(self, variant: str, field: str) -> float:
        """Median over rounds of (variant / django) within the same round."""
        by_round: dict[int, dict[str, float]] = {}
        for s in self.samples:
            by_round.setdefault(s.round, {})[s.variant] = getattr(s, field)
        return statistics.median(r[variant] / r["django"] for r in by_round.values())


def summary_table(results: SideBySide) -> list[str]:
    lines = ["| measurement | variant | median | min | max |", "|---|---|--:|--:|--:|"]
    for field, measurement in MEASUREMENTS.items():
        for variant in VARIANTS:
            st = results.stats(variant, field)
            lines.append(
                f"| {measurement} | {SHORT_NAMES[variant]} | {st.median:.3f} s | "
                f"{st.minimum:.3f} s | {st.maximum:.3f} s |"
            )
    return lines


def ratio_table(results: SideBySide) -> list[str]:
    lines = [
        "| ratio to Django's `migrate` | " + " | ".join(MEASUREMENTS.values()) + " |",
        "|---|" + "--:|" * len(MEASUREMENTS),
    ]
    kinds = (
        ("ratio of medians", results.ratio),
        ("median of per-round ratios", results.paired_ratio),
        ("ratio of minimums", results.min_ratio),
    )
    for variant in ("safemigrate", "migrate"):
        for kind, ratio in kinds:
            cells = " | ".join(f"{ratio(variant, field):.3f}" for field in MEASUREMENTS)
            lines.append(f"| {SHORT_NAMES[variant]}, {kind} | {cells} |")
    return lines


def verdict(results: SideBySide, variant: str, field: str, target: float = TARGET_RATIO) -> str:
    """The ratio of medians to Django's, and whether it is within ``target``."""
    ratio = results.ratio(variant, field)
    return f"{ratio:.3f}: {'met' if ratio <= target else 'not met'}"
