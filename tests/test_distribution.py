"""The published artefacts: sdist and wheel from ``python -m build``, installed in a clean venv.

Nothing here imports the checkout: the wheel is installed into a new virtual environment
(no system site-packages, no ``PYTHONPATH``), and a tiny project beside it runs
``check``, ``checkmigrations --offline``, ``safemigrate`` on a real PostgreSQL and
``safemigrate-check`` through the installed scripts. Then the older django-safemigrate
distribution is installed into the same environment, from PyPI, and the system check
must name it (``safemigrate.E022``) until its hint has been followed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.helpers import ROOT, fresh_database, query, url_for

pytestmark = [pytest.mark.slow, pytest.mark.once]

PACKAGE = ROOT / "django_safemigrate"
#: What a checkout holds besides its sources (venvs, builds, caches, test output).
LEFTOVERS = (".git", ".venv*", "*.egg-info", "build", "dist", "__pycache__", "*.pyc")
LEFTOVERS += (".pgdata", ".mypy_cache", ".ruff_cache", ".pytest_cache", "artifacts")
OLDER = "django-safemigrate==6.0"

SETTINGS = """\
import os

SECRET_KEY = "distribution-test"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("SHOP_DATABASE", "nothing"),
        "HOST": os.environ.get("SHOP_HOST", "127.0.0.1"),
        "PORT": os.environ.get("SHOP_PORT", "1"),
        "USER": os.environ.get("SHOP_USER", "postgres"),
        "PASSWORD": os.environ.get("SHOP_PASSWORD", ""),
    }
}
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_safemigrate",
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
"""

MODELS = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
"""

INITIAL = """\
from django.db import migrations, models


class Migration(migrations.Migration):
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

REMOVE = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RemoveField(model_name="item", name="legacy")]
"""


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel built from it (``python -m build`` builds the wheel from
    the sdist, so a file the sdist lacks is missing from the wheel too)."""
    # A copy without the checkout's build leftovers: setuptools reads an old
    # ``*.egg-info/SOURCES.txt`` as part of the manifest, which would hide a missing file.
    source = tmp_path_factory.mktemp("source") / "checkout"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFTOVERS))
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], timeout=600)
    (sdist,) = out.glob("django_pg_safemigrate-*.tar.gz")
    (wheel,) = out.glob("django_pg_safemigrate-*-py3-none-any.whl")
    return sdist, wheel


def package_files() -> set[str]:
    """Every file of the import package in the checkout, as the wheel names them."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_wheel_holds_the_whole_package_and_the_console_script(artefacts):
    _, wheel = artefacts
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    expected = package_files()
    # Templates, migrations and the typing marker are what a package-data mistake loses, and
    # a subpackage (the test server's) what a packages mistake loses.
    assert {
        "django_safemigrate/templates/admin/django_safemigrate/governedmigration/change_form.html",
        "django_safemigrate/migrations/0001_initial.py",
        "django_safemigrate/py.typed",
        "django_safemigrate/testing/postgres/__main__.py",
    } <= expected
    assert expected - names == set()
    assert "Name: django-pg-safemigrate\n" in metadata
    assert "safemigrate-check = django_safemigrate.check:main" in entry_points


def test_the_sdist_holds_the_package_and_its_documentation(artefacts):
    sdist, _ = artefacts
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"README.md", "docs/rules.md", "pyproject.toml"} <= names
    assert package_files() - names == set()
    assert not any(name.startswith("tests/") for name in names)


@pytest.fixture(scope="module")
def venv(artefacts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the wheel and its dependencies, nothing else."""
    _, wheel = artefacts
    path = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--clear", str(path)])
    pip(path, "install", str(wheel))
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project: settings and an app whose second migration drops a column."""
    path = tmp_path_factory.mktemp("project")
    (path / "shop_settings.py").write_text(SETTINGS)
    migrations = path / "shop" / "migrations"
    migrations.mkdir(parents=True)
    (path / "shop" / "__init__.py").write_text("")
    (path / "shop" / "models.py").write_text(MODELS)
    (migrations / "__init__.py").write_text("")
    (migrations / "0001_initial.py").write_text(INITIAL)
    (migrations / "0002_remove_item_legacy.py").write_text(REMOVE)
    return path


def test_the_installed_wheel_runs_a_project(venv, project):
    located = tool(
        venv,
        project,
        "python",
        "-c",
        "import django_safemigrate; print(django_safemigrate.__file__)",
    )
    assert Path(located.stdout.strip()).is_relative_to(venv)

    checked = tool(venv, project, "django-admin", "check")
    assert "System check identified no issues" in checked.stdout

    judged = tool(venv, project, "django-admin", "checkmigrations", "--offline", "--all", expect=1)
    assert "shop/migrations/0002_remove_item_legacy.py:6: SM201 [destructive]" in judged.stdout
    assert "SM901" not in judged.stdout
    explained = tool(venv, project, "django-admin", "checkmigrations", "--explain", "SM201")
    assert "SM201" in explained.stdout

    marked = tool(venv, project, "safemigrate-check", "shop/migrations/0001_initial.py", expect=1)
    assert "shop/migrations/0001_initial.py: Migration has no deploy marker" in marked.stdout

    # The admin's templates come from the wheel.
    template = tool(
        venv,
        project,
        "python",
        "-c",
        "import django; django.setup(); from django.template.loader import get_template; "
        "print(get_template('admin/django_safemigrate/governedmigration/change_form.html')"
        ".origin.name)",
    )
    assert Path(template.stdout.strip()).is_relative_to(venv)

    # The wheel's own migrations build the ledger on a real database (a first deploy on an
    # empty database is not gated, so the destructive migration runs too).
    with fresh_database("wheel") as name:
        tool(venv, project, "django-admin", "safemigrate", env=database_env(name))
        assert query(name, "SELECT name FROM django_migrations WHERE app = 'shop' ORDER BY id") == [
            ("0001_initial",),
            ("0002_remove_item_legacy",),
        ]
        assert query(name, "SELECT command, outcome FROM django_safemigrate_run") == [
            ("safemigrate", "applied")
        ]


def test_the_older_distribution_beside_it_fails_the_check_until_its_hint_is_followed(
    venv, project, artefacts
):
    _, wheel = artefacts
    # Installed first, then this package over it: this app's files win, and its check runs.
    pip(venv, "install", OLDER)
    pip(venv, "install", "--force-reinstall", "--no-deps", str(wheel))
    failed = tool(venv, project, "django-admin", "check", expect=1)
    assert "(safemigrate.E022) The older django-safemigrate package (version 6.0)" in failed.stderr
    assert "HINT: pip uninstall django-safemigrate django-pg-safemigrate" in failed.stderr

    # The hint, with the wheel standing for the package index.
    pip(venv, "uninstall", "--yes", "django-safemigrate", "django-pg-safemigrate")
    pip(venv, "install", str(wheel))
    checked = tool(venv, project, "django-admin", "check")
    assert "System check identified no issues" in checked.stdout
    tool(venv, project, "safemigrate-check", "shop/migrations/0001_initial.py", expect=1)


# -- helpers -----------------------------------------------------------------------------------


def run(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    expect: int = 0,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(args),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == expect, (
        f"{' '.join(args)}: expected exit {expect}, got {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    return proc


def pip(venv: Path, *args: str) -> None:
    run([str(venv / "bin" / "python"), "-m", "pip", "--quiet", *args], timeout=600)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without anything that would reach the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "PYTHONHOME"}
    }
    env["DJANGO_SETTINGS_MODULE"] = "shop_settings"
    env.update(extra or {})
    return env


def database_env(name: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url_for(name))
    return {
        "SHOP_DATABASE": name,
        "SHOP_HOST": str(params.get("host") or "127.0.0.1"),
        "SHOP_PORT": str(params.get("port") or "5432"),
        "SHOP_USER": str(params.get("user") or "postgres"),
        "SHOP_PASSWORD": str(params.get("password") or ""),
    }


def tool(
    venv: Path,
    project: Path,
    name: str,
    *args: str,
    env: dict[str, str] | None = None,
    expect: int = 0,
) -> subprocess.CompletedProcess[str]:
    """Run one of the venv's scripts in the project directory (which is on ``sys.path``
    as the current directory for ``django-admin``, and through ``PYTHONPATH`` for python)."""
    environment = clean_env(env)
    environment["PYTHONPATH"] = str(project)
    return run([str(venv / "bin" / name), *args], env=environment, cwd=project, expect=expect)
