"""Each corpus as throwaway projects, judged by ``checkmigrations``: the comparisons.

django-migration-linter's apps are judged in stages: in stage k, every app is migrated up
to its k-th migration, and ``checkmigrations`` judges the next one, which so finds the
tables of the migrations before it in the database (a migration's verdict depends on
whether its table already exists). squawk's fixtures are judged in rounds: each fixture is
an app of its own (a setup migration, applied, then its SQL, judged), and fixtures that
name the same table go to different rounds, each round a project and a database of its own.
"""

from __future__ import annotations

import dataclasses
import secrets
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import create_database, drop_database, with_database

from agreement import linter_corpus, project, squawk_corpus, wrap
from agreement.classification import Comparison
from agreement.source import CorpusError, GitTree
from agreement.vocabulary import OurVerdict, merge, our_verdict, squawk_peer

LINTER = "django-migration-linter"
SQUAWK = "squawk"


@dataclasses.dataclass
class Databases:
    """Creates the throwaway databases of one run and drops them (unless kept)."""

    maintenance_url: str
    keep: bool = False
    prefix: str = dataclasses.field(default_factory=lambda: f"sm_agree_{secrets.token_hex(3)}")
    count: int = 0

    @contextmanager
    def fresh(self) -> Iterator[str]:
        self.count += 1
        name = f"{self.prefix}_{self.count}"
        create_database(self.maintenance_url, name)
        try:
            yield with_database(self.maintenance_url, name)
        finally:
            if self.keep:
                print(f"Kept database {name}.", file=sys.stderr)
            else:
                drop_database(self.maintenance_url, name)


Progress = Callable[[str], None]


def _verdict(judged: project.Judged, key: tuple[str, str]) -> OurVerdict:
    report = judged.reports.get(key)
    if report is None:
        raise project.ProjectError(f"checkmigrations did not judge {key[0]}.{key[1]}")
    return our_verdict(report["findings"])


def linter_comparisons(
    tree: GitTree,
    databases: Databases,
    workdir: Path,
    *,
    checks: dict[tuple[str, str], tuple[str, ...]] | None = None,
    progress: Progress = print,
) -> list[Comparison]:
    cases = linter_corpus.cases(tree, checks=checks)
    apps = {case.app.label: case.app for case in cases}
    root = workdir / "linter"
    sources = []
    for app in apps.values():
        for path in tree.files(f"{linter_corpus.PROJECT}/{app.folder}"):
            if path.endswith(".py"):
                target = root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                text = tree.read(path)
                target.write_text(text, encoding="utf-8")
                if "/migrations/" in path:
                    sources.append(text)
    for package in ("tests", "tests/test_project"):
        (root / package / "__init__.py").write_text("", encoding="utf-8")
    missing = project.missing_imports(sources, local=["tests", "django"])
    if missing:
        raise CorpusError(
            f"the {LINTER} test project's migrations import {', '.join(missing)}, which this "
            "environment lacks: pip install django-migration-linter==6.0.0 "
            "django-add-default-value (benchmark tools, not project dependencies)"
        )
    project.write_settings(root, [app.installed_as for app in apps.values()])
    verdicts: dict[tuple[str, str], OurVerdict] = {}
    stages = max(len(app.migrations) for app in apps.values())
    for stage in range(stages):
        targets = [(a.label, a.migrations[stage - 1]) for a in apps.values()
                   if stage and len(a.migrations) > stage]  # fmt: skip
        judged_now = [(a.label, a.migrations[stage]) for a in apps.values()
                      if len(a.migrations) > stage]  # fmt: skip
        progress(f"{LINTER}: stage {stage + 1}/{stages}, {len(judged_now)} migrations")
        with databases.fresh() as url:
            project.apply(root, url, targets)
            judged = project.judge(root, url)
        for key in judged_now:
            verdicts[key] = _verdict(judged, key)
    return [
        Comparison(LINTER, case.key, case.peer, verdicts[(case.app.label, case.migration)])
        for case in cases
    ]


@dataclasses.dataclass(frozen=True)
class _Prepared:
    label: str
    fixture: squawk_corpus.Fixture
    wrapped: wrap.Wrapped


def rounds(prepared: list[_Prepared]) -> list[list[_Prepared]]:
    """Fixtures grouped so that a round has one PostgreSQL version and no shared name."""
    out: list[tuple[int, set[str], list[_Prepared]]] = []
    for item in prepared:
        names = {n.lower() for n in item.wrapped.tables}
        for version, taken, members in out:
            if version == item.fixture.pg_version and not taken & names:
                taken.update(names)
                members.append(item)
                break
        else:
            out.append((item.fixture.pg_version, set(names), [item]))
    return [members for _, _, members in out]


def write_fixture_app(root: Path, item: _Prepared) -> list[str]:
    """The fixture's app: ``0001_setup`` and one migration per segment; their names."""
    folder = root / item.label
    fixture = item.fixture
    comment = f"squawk fixture {fixture.key} ({fixture.where})"
    project.write_migration(
        folder,
        "0001_setup",
        project.runsql_migration(
            item.label, depends_on=None, sql=item.wrapped.setup_sql, atomic=True, comment=comment
        ),
    )
    names, previous = [], "0001_setup"
    for index, segment in enumerate(item.wrapped.segments, start=2):
        name = f"{index:04d}_fixture"
        project.write_migration(
            folder,
            name,
            project.runsql_migration(
                item.label, depends_on=previous, sql=segment.sql, atomic=segment.atomic,
                comment=comment,
            ),
        )  # fmt: skip
        names.append(name)
        previous = name
    return names


def squawk_comparisons(
    tree: GitTree,
    databases: Databases,
    workdir: Path,
    *,
    progress: Progress = print,
    only: Collection[str] | None = None,
) -> list[Comparison]:
    """Every fixture judged (``only``: the fixtures of these keys or rules)."""
    fixtures = [
        f for f in squawk_corpus.load(tree) if only is None or f.key in only or f.rule in only
    ]
    prepared = [
        _Prepared(
            f"sq{index:03d}",
            fixture,
            wrap.wrap(fixture.sql, assume_in_transaction=fixture.assume_in_transaction),
        )
        for index, fixture in enumerate(fixtures)
    ]
    comparisons: list[Comparison] = []
    groups = rounds(prepared)
    for number, members in enumerate(groups, start=1):
        version = members[0].fixture.pg_version
        progress(
            f"{SQUAWK}: round {number}/{len(groups)}, {len(members)} fixtures, PostgreSQL {version}"
        )
        root = workdir / f"squawk_{number:02d}"
        written = {item.label: write_fixture_app(root, item) for item in members}
        project.write_settings(root, [item.label for item in members])
        with databases.fresh() as url:
            project.apply(root, url, [(item.label, "0001_setup") for item in members])
            judged = project.judge(root, url, pg_version=version)
        for item in members:
            ours = merge(_verdict(judged, (item.label, name)) for name in written[item.label])
            peer = squawk_peer(item.fixture.rule, item.fixture.expects_error, item.fixture.where)
            comparisons.append(
                Comparison(SQUAWK, item.fixture.key, peer, ours, rule=item.fixture.rule)
            )
    order = {item.fixture.key: i for i, item in enumerate(prepared)}
    return sorted(comparisons, key=lambda c: order[c.key])
