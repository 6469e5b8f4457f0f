"""``bench/agreement``: reading the peers' corpora, the vocabulary, and the classification.

The real corpora live on GitHub and are not fetched here: each test makes a tiny corpus of
the same shape in a git repository of its own (a squawk-style rule file, a
django-migration-linter-style test project) and checks what the benchmark reads from it.
The end-to-end test runs ``bench/agreement/run.py`` on a two-fixture squawk corpus against
the test server and checks that an unclassified disagreement fails the run (exit 1), a
classified one passes (exit 0), and an entry that no longer matches fails it again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, server_url

sys.path.insert(0, str(ROOT / "bench"))

from agreement import classification, linter_corpus, squawk_corpus, wrap
from agreement.source import CorpusError, open_corpus
from agreement.vocabulary import Concern, OurVerdict, our_verdict, squawk_peer

pytestmark = pytest.mark.once

LIB_RS = """\
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let val = match &self {
            Rule::BanDropTable => "ban-drop-table",
            Rule::RequireConcurrentIndexCreation => "require-concurrent-index-creation",
        };
        write!(f, "{val}")
    }
}
"""

RULE_RS = r"""
pub(crate) fn require_concurrent_index_creation() {}

#[cfg(test)]
mod test {
    use crate::test_utils::{lint_errors, lint_ok_with};
    use crate::{LinterSettings, Rule};

    #[test]
    fn plain_index_err() {
        let sql = r#"
-- a brace { and a "quote" inside the raw string
CREATE INDEX "idx" ON "orders" ("customer_id");
        "#;
        assert_snapshot!(lint_errors(sql, Rule::RequireConcurrentIndexCreation));
    }

    #[test]
    fn concurrent_ok() {
        let sql = "CREATE INDEX CONCURRENTLY \"idx2\" ON \"orders\" (\"total\");";
        lint_ok_with(
            sql,
            LinterSettings {
                pg_version: "12".parse().expect("version"),
                ..Default::default()
            },
            Rule::RequireConcurrentIndexCreation,
        );
    }

    #[test]
    fn fix_is_not_a_fixture() {
        assert_snapshot!(fix("CREATE INDEX i ON t (c);"), @"");
    }
}
"""

DROP_RULE_RS = r"""
#[cfg(test)]
mod test {
    #[test]
    fn drop_err() {
        let sql = r#"DROP TABLE "legacy";"#;
        assert_snapshot!(lint_errors(sql, Rule::BanDropTable));
    }
}
"""


def git_repo(path: Path, files: dict[str, str]) -> str:
    """A git repository at ``path`` with ``files`` in one commit; its SHA."""
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "corpus"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def squawk_repo(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "squawk"
    sha = git_repo(
        path,
        {
            squawk_corpus.LIB: LIB_RS,
            f"{squawk_corpus.RULES_DIR}/require_concurrent_index_creation.rs": RULE_RS,
            f"{squawk_corpus.RULES_DIR}/ban_drop_table.rs": DROP_RULE_RS,
        },
    )
    return path, sha


def test_squawk_fixtures_are_read_from_the_rust_tests(squawk_repo: tuple[Path, str]) -> None:
    path, sha = squawk_repo
    tree = open_corpus(path, name="squawk", pinned=sha, commit=None, allow_other=False)
    fixtures = {f.key: f for f in squawk_corpus.load(tree)}
    assert sorted(fixtures) == [
        "ban-drop-table/drop_err",
        "require-concurrent-index-creation/concurrent_ok",
        "require-concurrent-index-creation/plain_index_err",
    ]
    plain = fixtures["require-concurrent-index-creation/plain_index_err"]
    assert plain.expects_error
    assert 'CREATE INDEX "idx" ON "orders"' in plain.sql
    assert 'a brace { and a "quote"' in plain.sql
    assert plain.pg_version == squawk_corpus.DEFAULT_PG_VERSION
    concurrent = fixtures["require-concurrent-index-creation/concurrent_ok"]
    assert not concurrent.expects_error
    assert concurrent.pg_version == 12
    assert concurrent.sql == 'CREATE INDEX CONCURRENTLY "idx2" ON "orders" ("total");'


def test_another_commit_is_refused_unless_allowed(squawk_repo: tuple[Path, str]) -> None:
    path, sha = squawk_repo
    pinned = "0" * 40
    with pytest.raises(CorpusError, match="pinned"):
        open_corpus(path, name="squawk", pinned=pinned, commit=None, allow_other=False)
    with pytest.raises(CorpusError, match="pinned"):
        open_corpus(path, name="squawk", pinned=pinned, commit=sha, allow_other=False)
    tree = open_corpus(path, name="squawk", pinned=pinned, commit=sha, allow_other=True)
    assert tree.commit == sha


def test_wrapping_splits_at_transactions_and_creates_what_the_fixture_uses() -> None:
    wrapped = wrap.wrap(
        "BEGIN;\nALTER TABLE orders ALTER COLUMN total SET NOT NULL;\nCOMMIT;\n"
        "CREATE INDEX CONCURRENTLY i ON orders (customer_id);\nDROP INDEX old_idx;",
        assume_in_transaction=False,
    )
    assert [s.atomic for s in wrapped.segments] == [True, False]
    assert wrapped.segments[0].sql == "ALTER TABLE orders ALTER COLUMN total SET NOT NULL;"
    assert 'CREATE TABLE "orders" ("customer_id" integer, "total" integer);' in wrapped.setup_sql
    assert 'CREATE INDEX "old_idx"' in wrapped.setup_sql
    kept = wrap.wrap("COMMIT;\nSELECT 1;\nBEGIN;", assume_in_transaction=True)
    assert [(s.sql, s.atomic) for s in kept.segments] == [("COMMIT;\nSELECT 1;\nBEGIN;", True)]


def test_vocabulary_counts_only_blocking_risky_findings() -> None:
    ours = our_verdict(
        [
            {"code": "SM101", "severity": "risky", "blocking": False},
            {"code": "SM402", "severity": "safe", "blocking": True},
            {"code": "SM201", "severity": "destructive", "blocking": True},
        ]
    )
    assert ours.concerns == {Concern.DATA_LOSS, Concern.COMPAT}
    assert ours.codes == ("SM201",)
    with pytest.raises(KeyError, match="SM999"):
        our_verdict([{"code": "SM999", "severity": "risky", "blocking": True}])


def _comparison(rule: str, error: bool, ours: OurVerdict) -> classification.Comparison:
    peer = squawk_peer(rule, error, "x.rs:1")
    return classification.Comparison("squawk", f"{rule}/t", peer, ours, rule=rule)


def test_a_lint_ok_clears_only_its_rules_concern() -> None:
    lock = OurVerdict(frozenset({Concern.LOCK}), ("SM101",))
    assert _comparison("ban-drop-table", False, lock).agrees
    assert not _comparison("require-concurrent-index-creation", False, lock).agrees
    assert _comparison("require-concurrent-index-creation", True, lock).agrees
    assert not _comparison("ban-drop-table", True, lock).agrees


def test_classification_matches_what_both_said(tmp_path: Path) -> None:
    verify = tmp_path / "verify"
    verify.mkdir()
    (verify / "check.py").write_text("", encoding="utf-8")
    passes = OurVerdict(frozenset(), ())
    disagreement = _comparison("ban-drop-table", True, passes)
    toml = tmp_path / "d.toml"
    toml.write_text(
        '[[disagreement]]\ncorpus = "squawk"\nkey = "ban-drop-table/t"\nclass = "their error"\n'
        'they = "flags backward-incompatible change, data loss"\nwe = "passes"\nwhy = "w"\n'
        'verified_by = "check.py"\n',
        encoding="utf-8",
    )
    entries = classification.load(toml, verify_dir=verify)
    outcome = classification.classify([disagreement], entries)
    assert outcome.ok
    assert outcome.classified[0][1].klass == "their error"
    # What we say changed: the old reason no longer explains it.
    changed = _comparison("ban-drop-table", True, OurVerdict(frozenset({Concern.LOCK}), ("SM1",)))
    outcome = classification.classify([changed], entries)
    assert outcome.unclassified == [changed]
    assert outcome.stale == entries
    toml.write_text(toml.read_text().replace('verified_by = "check.py"', ""), encoding="utf-8")
    with pytest.raises(classification.ClassificationError, match="verified_by"):
        classification.load(toml, verify_dir=verify)


def test_linter_assertions_are_read_and_checked_against_the_checks(tmp_path: Path) -> None:
    tests = (
        "class BaseBackwardCompatibilityDetection:\n"
        "    def test_detect_drop(self):\n"
        "        app = fixtures.DROP\n"
        "        self._test_linter_finds_errors(app)\n"
        "    def test_with_git_ref(self):\n"
        '        self._test_linter_finds_errors(commit_id="v1")\n'
        "class PostgresqlBackwardCompatibilityDetectionTestCase:\n"
        "    def test_ok(self):\n"
        "        self._test_linter_finds_no_errors(fixtures.FINE)\n"
    )
    data = "class DataMigrationDetectionTestCase:\n    pass\n"
    migration = "from django.db import migrations\n"
    files = {
        linter_corpus.FIXTURES: 'DROP = "app_drop"\nFINE = "app_fine"\n',
        linter_corpus.BACKWARD_TESTS: tests,
        linter_corpus.DATA_TESTS: data,
        f"{linter_corpus.PROJECT}/app_drop/migrations/0001_initial.py": migration,
        f"{linter_corpus.PROJECT}/app_drop/migrations/0002_drop.py": migration,
        f"{linter_corpus.PROJECT}/app_fine/migrations/0001_initial.py": migration,
    }
    sha = git_repo(tmp_path / "dml", files)
    tree = open_corpus(tmp_path / "dml", name="linter", pinned=sha, commit=None, allow_other=False)
    checks = {("app_drop", "0002_drop"): ("DROP_COLUMN",)}
    cases = {c.key: c.peer for c in linter_corpus.cases(tree, checks=checks)}
    assert cases["app_drop.0002_drop"].flags == {Concern.COMPAT, Concern.DATA_LOSS}
    assert cases["app_drop.0001_initial"].clears == {Concern.COMPAT, Concern.DATA_LOSS}
    assert not cases["app_fine.0001_initial"].flags
    with pytest.raises(CorpusError, match="asserts errors=True"):
        linter_corpus.cases(tree, checks={})


def _run(squawk: Path, toml: Path, sha: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "agreement" / "run.py"), "--squawk", str(squawk),
         "--squawk-commit", sha, "--allow-other-commit", "--classification", str(toml)],
        env=dict(os.environ, DATABASE_URL=server_url()),
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def test_an_unclassified_disagreement_fails_the_run(
    squawk_repo: tuple[Path, str], tmp_path: Path
) -> None:
    """Of four fixtures one disagrees: a hygiene rule flags ``DROP TABLE``, we flag no hygiene.

    The plain index on an existing table: both flag a lock hazard; the concurrent one:
    both pass; the ``ban-drop-table`` fixture: both flag compatibility and data loss.
    """
    path, sha = squawk_repo
    robust = r"""
#[cfg(test)]
mod test {
    #[test]
    fn drop_without_if_exists_err() {
        let sql = r#"DROP TABLE "archive";"#;
        assert_snapshot!(lint_errors(sql, Rule::PreferRobustStmts));
    }
}
"""
    rule_file = path / squawk_corpus.RULES_DIR / "prefer_robust_stmts.rs"
    rule_file.write_text(robust, encoding="utf-8")
    lib = path / squawk_corpus.LIB
    lib.write_text(
        LIB_RS.replace(
            'Rule::BanDropTable => "ban-drop-table",',
            'Rule::BanDropTable => "ban-drop-table",\n'
            '            Rule::PreferRobustStmts => "prefer-robust-stmts",',
        ),
        encoding="utf-8",
    )
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "more"],
        cwd=path,
        check=True,
    )
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, check=True, capture_output=True, text=True
    ).stdout.strip()
    toml = tmp_path / "disagreements.toml"
    toml.write_text("", encoding="utf-8")

    result = _run(path, toml, sha)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UNCLASSIFIED disagreement squawk prefer-robust-stmts/drop_without_if_exists_err" in (
        result.stderr
    )
    assert "| squawk | 4 | 3 | 1 | 0 | 0 | 0 | 1 |" in result.stdout

    toml.write_text(
        '[[rule]]\ncorpus = "squawk"\nrule = "prefer-robust-stmts"\n'
        'class = "different concern"\nthey = "flags hygiene"\nwhy = "IF EXISTS"\n',
        encoding="utf-8",
    )
    result = _run(path, toml, sha)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| squawk | 4 | 3 | 1 | 0 | 0 | 1 | 0 |" in result.stdout

    # An entry that matches no disagreement any more fails the run too.
    with toml.open("a", encoding="utf-8") as handle:
        handle.write(
            '\n[[disagreement]]\ncorpus = "squawk"\nkey = "ban-drop-table/drop_err"\n'
            'class = "different concern"\nthey = "flags backward-incompatible change, data '
            'loss"\nwe = "passes"\nwhy = "w"\n'
        )
    result = _run(path, toml, sha)
    assert result.returncode == 1
    assert "STALE classification squawk ban-drop-table/drop_err" in result.stderr
