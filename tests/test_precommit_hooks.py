"""``.pre-commit-hooks.yaml``, run by the real pre-commit in a throwaway git repository.

``pre-commit try-repo`` takes this repository as the hook repository (with its
uncommitted changes to tracked files) and runs one hook on the files staged in the
throwaway repository, as a commit would: ``check`` (the older package's
``safemigrate-check``, in an environment pre-commit builds from this package) and
``checkmigrations`` (``python manage.py checkmigrations --offline`` in the project's
environment: this test's interpreter comes first on ``PATH``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytest.importorskip("pre_commit", reason="pre-commit is not installed (the test extra has it)")

pytestmark = [pytest.mark.slow, pytest.mark.once]

MANAGE = """\
import sys

from django.core.management import execute_from_command_line

if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_settings")
    execute_from_command_line(sys.argv)
"""

SETTINGS = """\
SECRET_KEY = "pre-commit-test"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Nothing listens there: the hook judges offline.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "HOST": "127.0.0.1",
        "PORT": "1",
    }
}
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_safemigrate",
    "shop",
]
"""

MODELS = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
{extra}"""

INITIAL = """\
from django.db import migrations, models

from django_safemigrate import Safe


class Migration(migrations.Migration):
    safe = Safe.before_deploy()
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50)),
                ("legacy", models.TextField(default="")),
            ],
        ),
    ]
"""

ADD_NOTE = """\
from django.db import migrations, models
{imports}

class Migration(migrations.Migration):
{marker}    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="item", name="note", field=models.TextField(null=True)
        ),
    ]
"""

REMOVE_LEGACY = """\
from django.db import migrations

from django_safemigrate import Safe


class Migration(migrations.Migration):
    safe = Safe.after_deploy()
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RemoveField(model_name="item", name="legacy")]
"""

DROP_BY_SQL = """\
from django.db import migrations

from django_safemigrate import Safe


class Migration(migrations.Migration):
    safe = Safe.after_deploy()
    dependencies = [("shop", "0002_item_note")]
    operations = [migrations.RunSQL("DROP TABLE shop_item", migrations.RunSQL.noop)]
"""

MARKED = "from django_safemigrate import Safe\n"


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: pre-commit builds the ``check`` hook's environment once."""
    return tmp_path_factory.mktemp("pre_commit_home")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project whose first migration is committed; the tests stage the next ones."""
    path = tmp_path / "project"
    (path / "shop" / "migrations").mkdir(parents=True)
    files = {
        "manage.py": MANAGE,
        "shop_settings.py": SETTINGS,
        "shop/__init__.py": "",
        "shop/models.py": MODELS.format(extra='    legacy = models.TextField(default="")\n'),
        "shop/migrations/__init__.py": "",
        "shop/migrations/0001_initial.py": INITIAL,
    }
    for name, text in files.items():
        (path / name).write_text(text)
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "add", ".")
    git(path, "commit", "--quiet", "-m", "shop")
    return path


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return proc.stdout


def stage(repo: Path, **files: str) -> None:
    for name, text in files.items():
        (repo / name).write_text(text)
        git(repo, "add", name)


def hook(repo: Path, home: Path, hook_id: str, *, expect: int) -> str:
    """Run one hook of this repository's .pre-commit-hooks.yaml on the staged files."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV"}
    }
    env["PRE_COMMIT_HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook_id, "--verbose"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == expect, f"expected exit {expect}, got {proc.returncode}\n{output}"
    return output


def test_check_hook_refuses_a_staged_migration_without_a_marker(repo, pre_commit_home):
    stage(
        repo,
        **{
            "shop/models.py": MODELS.format(
                extra='    legacy = models.TextField(default="")\n'
                "    note = models.TextField(null=True)\n"
            ),
            "shop/migrations/0002_item_note.py": ADD_NOTE.format(imports="", marker=""),
        },
    )
    output = hook(repo, pre_commit_home, "check", expect=1)
    assert "Check that migrations declare their deploy phase" in output
    assert "shop/migrations/0002_item_note.py: Migration has no deploy marker" in output
    # The committed, marked migration was not passed: only the staged file is named.
    assert "0001_initial" not in output

    stage(
        repo,
        **{
            "shop/migrations/0002_item_note.py": ADD_NOTE.format(
                imports=MARKED, marker="    safe = Safe.before_deploy()\n"
            )
        },
    )
    output = hook(repo, pre_commit_home, "check", expect=0)
    assert "Passed" in output


def test_checkmigrations_hook_judges_the_staged_migrations_offline(repo, pre_commit_home):
    stage(
        repo,
        **{
            "shop/models.py": MODELS.format(extra=""),
            "shop/migrations/0002_remove_item_legacy.py": REMOVE_LEGACY,
        },
    )
    output = hook(repo, pre_commit_home, "checkmigrations", expect=1)
    assert "shop/migrations/0002_remove_item_legacy.py:9: SM201 [destructive]" in output, output
    assert "SM901" not in output
    assert "1 migration(s) checked" in output


def test_checkmigrations_hook_leaves_unstaged_migrations_alone(repo, pre_commit_home):
    stage(
        repo,
        **{
            "shop/models.py": MODELS.format(
                extra='    legacy = models.TextField(default="")\n'
                "    note = models.TextField(null=True)\n"
            ),
            "shop/migrations/0002_item_note.py": ADD_NOTE.format(
                imports=MARKED, marker="    safe = Safe.before_deploy()\n"
            ),
        },
    )
    # Written but not staged: not part of this commit, so not judged.
    (repo / "shop" / "migrations" / "0003_drop_by_sql.py").write_text(DROP_BY_SQL)
    output = hook(repo, pre_commit_home, "checkmigrations", expect=0)
    assert "1 migration(s) checked: 1 safe" in output
    assert "0003_drop_by_sql" not in output
    assert "Passed" in output
