"""How ``checkmigrations`` agrees with two peer linters on their own test corpora.

The corpora are the peers' own tests, with the verdicts their test suites assert:

- django-migration-linter (https://github.com/3YOURMIND/django-migration-linter): the
  apps of ``tests/test_project/`` and the PostgreSQL verdicts of its functional tests
  (``linter_corpus.py``);
- squawk (https://github.com/sbdchd/squawk): the SQL of the ``lint_ok``/``lint_errors``
  tests of each rule in ``crates/squawk_linter/src/rules/`` (``squawk_corpus.py``), each
  fixture wrapped in ``RunSQL`` migrations (``wrap.py``).

Each corpus becomes a throwaway Django project judged by ``checkmigrations --format json``
on databases created on the server of ``DATABASE_URL`` (``project.py``, ``corpora.py``);
both verdicts are mapped to one vocabulary (``vocabulary.py``), and every disagreement
must be explained in ``disagreements.toml`` (``classification.py``).

The corpora are not part of this repository: fetch them (a clone or a bare mirror) and
give their paths. Each is read at the commit pinned below; another commit is refused
unless ``--allow-other-commit`` is given::

    git clone https://github.com/3YOURMIND/django-migration-linter /tmp/dml
    git clone https://github.com/sbdchd/squawk /tmp/squawk
    # the linter's test migrations import these two (benchmark tools only):
    pip install django-migration-linter==6.0.0 django-add-default-value
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        python bench/agreement/run.py --linter /tmp/dml --squawk /tmp/squawk --write

Exit codes: 0 every disagreement is classified; 1 a disagreement is not classified, or an
entry of the classification file matches no disagreement any more (printed, with a
template to fill in); 2 bad usage, a corpus or the classification file cannot be read; 3
a throwaway project could not be built or judged.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _common import (  # noqa: E402
    cpu_model,
    git_revision,
    reproduce_command,
    reproduce_lines,
    server_url,
    server_version,
    update_benchmarks,
)

from agreement import classification, report  # noqa: E402
from agreement.classification import Comparison, Outcome  # noqa: E402
from agreement.corpora import (  # noqa: E402
    LINTER,
    SQUAWK,
    Databases,
    linter_comparisons,
    squawk_comparisons,
)
from agreement.project import ProjectError  # noqa: E402
from agreement.source import CorpusError, open_corpus  # noqa: E402

REPO_ROOT = HERE.parent.parent
PINNED = {
    LINTER: "d55ba66d440f183c6875285b3fec758a696903fa",  # "Bump to 6.0.0."
    SQUAWK: "5125ddf5ad42c85e6ed90173ff084e9866daeb85",  # "fmt: format types (#1302)"
}
CLASSIFICATION = HERE / "disagreements.toml"
VERIFY_DIR = HERE / "verify"
SECTION_TITLE = "Agreement with peer linters"
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/agreement/run.py",
        description="Compare checkmigrations with django-migration-linter and squawk on their "
        "own test corpora.",
    )
    parser.add_argument("--linter", type=Path, help="django-migration-linter clone or mirror")
    parser.add_argument("--squawk", type=Path, help="squawk clone or mirror")
    parser.add_argument("--linter-commit", help=f"default: the pinned {PINNED[LINTER][:12]}")
    parser.add_argument("--squawk-commit", help=f"default: the pinned {PINNED[SQUAWK][:12]}")
    parser.add_argument(
        "--allow-other-commit", action="store_true", help="measure at a commit not pinned"
    )
    parser.add_argument(
        "--classification", type=Path, default=CLASSIFICATION, help="the classification file"
    )
    parser.add_argument(
        "--write",
        nargs="?",
        type=Path,
        const=BENCHMARKS_MD,
        default=None,
        metavar="FILE",
        help=f"replace the '{SECTION_TITLE}' section of FILE (default {BENCHMARKS_MD.name})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the projects and databases (to inspect them)"
    )
    args = parser.parse_args(argv)
    if not args.linter and not args.squawk:
        parser.error("give --linter, --squawk or both")
    if args.write and not (args.linter and args.squawk):
        parser.error("--write needs both corpora (the section shows both)")
    return args


def section(
    results: Sequence[tuple[str, Sequence[Comparison], Outcome]],
    *,
    commits: dict[str, str],
    pg_version: str,
    started: datetime.datetime,
    seconds: float,
    command: str,
) -> str:
    lines = [
        f"## {SECTION_TITLE}",
        "",
        "`bench/agreement/run.py` judges two peer linters' own test corpora with "
        "`checkmigrations` and compares its verdicts with the ones the peers' test suites "
        "assert: django-migration-linter's test project (each migration of an app its "
        "PostgreSQL tests assert on; which migration carries an app's verdict is transcribed "
        "from its analyser and checked against the assertions) and squawk's rule fixtures "
        "(the SQL of each `lint_ok` / `lint_errors` test, wrapped in `RunSQL` migrations "
        "after a setup migration that creates the tables the fixture uses). Both verdicts "
        "are mapped to one vocabulary (lock hazard, backward-incompatible change, data loss, "
        "transaction hazard, statement that fails, needs review, hygiene); a peer that flags "
        "agrees when we flag one of its concerns, a peer that passes agrees when we flag none "
        "of the concerns it judges (a squawk test runs one rule: its `lint_ok` says nothing "
        "of the others). `checkmigrations` runs with `SMALL_TABLE_ROWS = 0` and `ONLINE = "
        "False` (the SQL as written, on tables that count as large); a finding counts when it "
        "is risky or destructive and blocking. Every disagreement is classified in "
        "`bench/agreement/disagreements.toml`; the script fails on one that is not. A "
        "disagreement classified as the peer's error names the script in "
        "`bench/agreement/verify/` that shows it on PostgreSQL (a 20,000-row table with the "
        "old code's writes, or the locks read from `pg_locks`).",
        "",
        "Not compared: squawk's tests of its autofix (`fix_sql`) and tests that build their "
        "SQL at run time (they assert what the fix writes, not a verdict); "
        "django-migration-linter's apps that no PostgreSQL test asserts a verdict on "
        "(`app_correct`, used by the command tests on SQLite, and the `makemigrations_*` "
        "apps, whose asserted migrations are generated during the test), and "
        "`app_data_migrations.0001_initial`.",
        "",
        "This run:",
        "",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; the run took {seconds:.0f} s",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()}, Django {importlib.metadata.version('Django')}, "
        f"pglast {importlib.metadata.version('pglast')}, PostgreSQL {pg_version}",
        f"- django_safemigrate: {git_revision(untracked=True, changes='uncommitted changes')}",
        f"- django-migration-linter at `{commits[LINTER]}`; squawk at `{commits[SQUAWK]}`",
        "",
        *report.summary_table(results),
        "",
    ]
    for name, comparisons, outcome in results:
        lines += [
            f"### {name}",
            "",
            *report.by_assertion_table(comparisons),
            "",
            "Disagreements:",
            "",
            *report.disagreement_lines(outcome),
            "",
        ]
    lines += reproduce_lines(command)
    return "\n".join(lines) + "\n"


def print_outcome(name: str, comparisons: Sequence[Comparison], outcome: Outcome) -> None:
    agree = sum(c.agrees for c in comparisons)
    print(f"\n{name}: {agree}/{len(comparisons)} agree")
    for line in report.disagreement_lines(outcome):
        print(line)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        entries = classification.load(args.classification, verify_dir=VERIFY_DIR)
        trees = {
            name: open_corpus(
                path,
                name=name,
                pinned=PINNED[name],
                commit=commit,
                allow_other=args.allow_other_commit,
            )
            for name, path, commit in (
                (LINTER, args.linter, args.linter_commit),
                (SQUAWK, args.squawk, args.squawk_commit),
            )
            if path is not None
        }
    except (CorpusError, classification.ClassificationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    given_url = os.environ.get("DATABASE_URL")
    maintenance_url = server_url("bench/agreement/run.py")
    pg_version = server_version(maintenance_url)
    started = datetime.datetime.now(datetime.UTC)
    clock = time.perf_counter()
    results: list[tuple[str, list[Comparison], Outcome]] = []

    def progress(message: str) -> None:
        print(message, file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="safemigrate-agreement-") as tmp:
        workdir = Path(tmp)
        if args.keep:
            workdir = Path(tempfile.mkdtemp(prefix="safemigrate-agreement-kept-"))
            progress(f"Projects in {workdir}")
        databases = Databases(maintenance_url, keep=args.keep)
        try:
            for name, tree in trees.items():
                runner = linter_comparisons if name == LINTER else squawk_comparisons
                comparisons = runner(tree, databases, workdir, progress=progress)
                results.append((name, comparisons, classification.classify(comparisons, entries)))
        except CorpusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except (ProjectError, KeyError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
    seconds = time.perf_counter() - clock
    print()
    for line in report.summary_table(results):
        print(line)
    for name, comparisons, outcome in results:
        print_outcome(name, comparisons, outcome)
    failed = False
    for _name, _comparisons, outcome in results:
        for comparison in outcome.unclassified:
            failed = True
            print(
                f"\nUNCLASSIFIED disagreement {comparison.corpus} {comparison.key} "
                f"({comparison.peer.where}): they {comparison.they}, we "
                f"{comparison.we}. Add to {args.classification}:\n"
                + classification.template(comparison),
                file=sys.stderr,
            )
        for entry in outcome.stale:
            failed = True
            print(
                f"\nSTALE classification {entry.label} (they {entry.they}, we "
                f"{entry.we or 'any'}): no disagreement of this run matches it any more. "
                "Remove it, or classify what the case says now.",
                file=sys.stderr,
            )
    if failed:
        print("\nNot every disagreement is classified (exit 1).", file=sys.stderr)
        return 1
    if args.write:
        commits = {name: tree.commit for name, tree in trees.items()}
        command = reproduce_command(
            "bench/agreement/run.py",
            ["--linter", "LINTER_CLONE", "--squawk", "SQUAWK_CLONE", "--write"],
            given_url,
        )
        text = section(
            results,
            commits=commits,
            pg_version=pg_version,
            started=started,
            seconds=seconds,
            command=command,
        )
        update_benchmarks(args.write, SECTION_TITLE, text)
        print(f"\nWrote the '{SECTION_TITLE}' section of {args.write}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
