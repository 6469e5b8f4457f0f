"""``safemigrate-check``: the older package's pre-commit command, run as the installed script.

The last test runs that package's own published tests of the command (from its sdist,
downloaded from PyPI) against this package.
"""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from django_safemigrate.check import validate_migrations
from tests.helpers import ROOT

pytestmark = pytest.mark.once

SCRIPT = Path(sys.executable).parent / "safemigrate-check"
OLDER_RELEASE = "6.0"

HEADER = "from django.db import migrations\nfrom django_safemigrate import Safe\n\n\n"


def migration(body: str, header: str = HEADER) -> str:
    return f"{header}class Migration(migrations.Migration):\n{body}\n    operations = []\n"


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is missing: install the package (pip install -e .)"
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def write(directory: Path, name: str, text: str) -> str:
    path = directory / "migrations" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return str(path.relative_to(directory))


@pytest.mark.parametrize(
    "body",
    [
        "    safe = Safe.before_deploy()",
        "    safe = Safe.after_deploy()",
        "    safe = Safe.after_deploy(delay=timedelta(days=7))",
        "    safe = Safe.always()",
        "    safe = django_safemigrate.Safe.always()",
        '    safemigrate_phase = "post_deploy"',
        '    safemigrate_phase: str = "pre_deploy"',
    ],
)
def test_marked_migrations_pass(tmp_path, body):
    path = write(tmp_path, "0002_marked.py", migration(body))
    result = run_script(path, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("    initial = True", "Migration has no deploy marker: add safe = Safe.before_deploy()"),
        (
            "    safe = Safe.always",
            "Migration uses the uncalled safe = Safe.always: write safe = Safe.always() instead.",
        ),
        (
            "    safe = Safe.after_deploy",
            "uses the uncalled safe = Safe.after_deploy: write safe = Safe.after_deploy() instead",
        ),
        ("    safe = True", "Migration sets safe = True, which is not Safe.before_deploy()"),
        ("    safe = Safe.later()", "sets safe = Safe.later(), which is not"),
        (
            '    safemigrate_phase = "later"',
            "sets safemigrate_phase = 'later', which is not one of 'pre_deploy', 'post_deploy'",
        ),
        # Only code counts: a marker in a comment or a docstring is no marker.
        (
            '    """safe = Safe.always()"""\n    # safe = Safe.before_deploy()',
            "has no deploy marker",
        ),
    ],
)
def test_unmarked_or_wrongly_marked_migrations_fail_with_one_line_each(tmp_path, body, expected):
    path = write(tmp_path, "0002_unmarked.py", migration(body))
    result = run_script(path, cwd=tmp_path)
    assert result.returncode == 1, result
    first, *rest = result.stdout.splitlines()
    assert first.startswith(f"{path}: ")
    assert expected in first
    # The closing paragraph says how to mark a migration.
    assert "        safe = Safe.before_deploy()  # or Safe.after_deploy(), Safe.always()" in rest
    assert result.stderr == ""


def test_only_the_unmarked_files_are_named(tmp_path):
    good = write(tmp_path, "0002_good.py", migration("    safe = Safe.always()"))
    bad = write(tmp_path, "0003_bad.py", migration("    pass"))
    worse = write(tmp_path, "0004_worse.py", migration("    safe = Safe.before_deploy"))
    result = run_script(good, bad, worse, cwd=tmp_path)
    assert result.returncode == 1
    named = [line.split(": ")[0] for line in result.stdout.splitlines() if ": " in line]
    assert named == [bad, worse]


def test_a_file_without_a_migration_class_passes(tmp_path):
    plain = write(tmp_path, "0002_helpers.py", "class Helper(object):\n    pass\n")
    prose = write(tmp_path, "0003_notes.py", "THIS IS NOT A MIGRATION\n")
    result = run_script(plain, prose, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == ""
    # A file that is not Python is named, without a traceback.
    assert result.stderr.startswith(f"{prose}: not Python source (invalid syntax")
    assert "Traceback" not in result.stderr


def test_every_migration_class_of_a_file_is_checked(tmp_path):
    text = migration("    safe = Safe.always()") + (
        "\n\nclass Other(migrations.Migration):\n    operations = []\n"
    )
    path = write(tmp_path, "0002_two.py", text)
    result = run_script(path, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        f"{path}: Other has no deploy marker: add safe = Safe.before_deploy(), "
        "Safe.after_deploy() or Safe.always() to it."
    )


def test_a_file_that_cannot_be_read_exits_2_with_one_paragraph(tmp_path):
    result = run_script("migrations/0009_gone.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "safemigrate-check cannot read migrations/0009_gone.py (No such file or directory)."
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_command_line_no_files_help_and_unknown_options(tmp_path):
    assert run_script(cwd=tmp_path).returncode == 0
    helped = run_script("--help", cwd=tmp_path)
    assert helped.returncode == 0
    assert "usage: safemigrate-check [-h] [FILE ...]" in helped.stdout
    unknown = run_script("--strict", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "unrecognized arguments: --strict" in unknown.stderr


def test_validate_migrations_writes_to_the_streams_it_is_given(tmp_path):
    path = write(tmp_path, "0002_x.py", migration("    pass"))
    out, err = io.StringIO(), io.StringIO()
    assert not validate_migrations([Path(tmp_path / path)], stdout=out, stderr=err)
    assert out.getvalue().startswith(f"{tmp_path / path}: Migration has no deploy marker")
    assert err.getvalue() == ""


# -- the older package's own tests of the command ----------------------------------------------


@pytest.fixture(scope="module")
def published_tests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The older package's test module of this release, from its sdist on PyPI."""
    download = tmp_path_factory.mktemp("older_sdist")
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"),
            *("-d", str(download), f"django-safemigrate=={OLDER_RELEASE}"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"the older package's sdist could not be downloaded: {proc.stderr[-500:]}")
    (archive,) = download.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(download, filter="data")
    (found,) = download.glob("*/tests/safemigrate_test.py")
    return found


def test_the_older_packages_published_tests_of_the_command_pass(published_tests, tmp_path):
    """Its test classes for ``validate_migrations``, run as published.

    Its test module also imports its ``safemigrate`` command and ``SafeMigration`` model,
    which this package replaces (README, "Moving from the older package"); the classes
    that test this command are taken from it unchanged, with the import they use.
    """
    source = published_tests.read_text()
    tree = ast.parse(source)
    classes = [
        ast.get_source_segment(source, node)
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and "validate_migrations" in (ast.get_source_segment(source, node) or "")
    ]
    assert len(classes) >= 2, "the published module no longer has the command's tests"
    module = tmp_path / "test_published_check.py"
    module.write_text(
        "from django_safemigrate.check import validate_migrations\n\n\n"
        + "\n\n\n".join(str(c) for c in classes)
        + "\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:django"),
            *("-q", "--rootdir", str(tmp_path), str(module)),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout
