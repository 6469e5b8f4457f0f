"""Project scope: installed packages' migrations are shown, but fail nothing and need no review.

The installed package here is a real one as far as the scope can tell: the scenario app
copied into a ``site-packages`` directory on ``PYTHONPATH``, as pip would put it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_safemigrate.scope import module_package
from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    run_command,
    url_for,
)

#: Nothing here depends on the Django version: run once, in CI's first pass.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.once]

APP = "firstdeploy"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_scope") as name:
        yield name


@pytest.fixture
def site_packages(tmp_path: Path) -> Path:
    """The scenario app installed as a package would be."""
    target = tmp_path / "lib" / "python3" / "site-packages"
    target.mkdir(parents=True)
    copy_scenario(APP, target)
    return target


def test_packages_are_told_from_the_project() -> None:
    import django.contrib.auth.migrations  # noqa: F401

    import django_safemigrate.migrations  # noqa: F401
    import tests.settings  # noqa: F401

    assert (module_package("django.contrib.auth.migrations") or "").startswith("Django ")
    assert (module_package("django_safemigrate.migrations") or "").startswith(
        "django-pg-safemigrate "
    )
    assert module_package("tests.settings") is None


def test_a_module_under_site_packages_is_an_installed_package(site_packages: Path) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import firstdeploy.migrations; "
        "from django_safemigrate.scope import module_package; "
        "print(module_package('firstdeploy.migrations'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(site_packages)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # No distribution metadata: the top-level package names it.
    assert out == APP


def _env(
    database: str, site_packages: Path, settings: dict[str, object] | None = None
) -> dict[str, str]:
    return command_env(database, apps=[APP], pythonpath=[site_packages], settings=settings)


def test_a_package_migration_is_shown_but_does_not_fail_the_check(
    database: str, site_packages: Path
) -> None:
    env = _env(database, site_packages)
    result = run_command(["checkmigrations", APP, "--all", "--format", "json"], env, expect=0)
    report = json.loads(result.out)
    migrations = {m["name"]: m for m in report["migrations"]}
    removal = migrations["0004_remove_item_legacy"]
    assert removal["package"] == APP
    assert removal["governed"] is False
    assert removal["risk"] == "destructive"
    drop = next(f for f in removal["findings"] if f["code"] == "SM201")
    assert drop["blocking"] is False
    assert drop["kinds"] == ["loses-data", "breaks-old-code"]
    assert report["summary"]["blocking"] == 0

    text = run_command(["checkmigrations", APP, "--all"], env, expect=0).out
    assert f"installed package {APP}: shown, not failing" in text

    # The setting brings it back into scope: the same check fails.
    for setting in (True, [APP]):
        governed = _env(database, site_packages, {"GOVERN_PACKAGES": setting})
        run_command(["checkmigrations", APP, "--all"], governed, expect=1)


def test_a_package_migration_needs_no_review(database: str, site_packages: Path) -> None:
    env = _env(database, site_packages)
    # The first deploy stops before the destructive migration.
    run_command(["safemigrate", APP, "0003"], env, expect=0)

    run_command(["safemigrate"], env, expect=0)
    assert (APP, "0004_remove_item_legacy") in applied(database, APP)


def test_a_governed_package_migration_needs_a_review(database: str, site_packages: Path) -> None:
    env = _env(database, site_packages, {"GOVERN_PACKAGES": [APP]})
    run_command(["safemigrate", APP, "0003"], env, expect=0)

    result = run_command(["safemigrate"], env, expect=3)
    assert "firstdeploy.0004_remove_item_legacy needs a review (destructive)" in result.err
    assert (APP, "0004_remove_item_legacy") not in applied(database, APP)


def test_a_package_problem_does_not_fail_the_check(database: str, site_packages: Path) -> None:
    # The package's models moved on without a migration (SM901).
    models = site_packages / APP / "models.py"
    models.write_text(models.read_text() + "    extra = models.IntegerField(null=True)\n")
    env = _env(database, site_packages)
    report = json.loads(
        run_command(["checkmigrations", "--all", "--format", "json"], env, expect=0).out
    )
    problem = next(p for p in report["problems"] if p["code"] == "SM901")
    assert problem["package"] == APP
    assert problem["blocking"] is False
    assert report["summary"]["blocking_problems"] == 0

    governed = _env(database, site_packages, {"GOVERN_PACKAGES": True})
    run_command(["checkmigrations", "--all"], governed, expect=1)


def test_a_new_project_passes_check_all(database: str, tmp_path: Path) -> None:
    """``startproject``, this app and a first app of its own: ``checkmigrations --all``
    passes, although Django's contrib migrations and this app's own have findings."""
    admin = [sys.executable, "-m", "django"]
    subprocess.run([*admin, "startproject", "mysite", str(tmp_path)], check=True)
    subprocess.run([sys.executable, "manage.py", "startapp", "polls"], cwd=tmp_path, check=True)
    (tmp_path / "polls" / "models.py").write_text(
        textwrap.dedent(
            """
            from django.db import models


            class Question(models.Model):
                text = models.CharField(max_length=200)
            """
        )
    )
    settings = tmp_path / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + textwrap.dedent(
            """
            import os

            import dj_database_url

            DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
            INSTALLED_APPS += ["django_safemigrate", "polls"]
            if os.environ.get("GOVERN_PACKAGES"):
                SAFEMIGRATE = {"GOVERN_PACKAGES": True}
            """
        )
    )
    env = {
        k: v
        for k, v in command_env(database).items()
        if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")
    }
    env["DATABASE_URL"] = url_for(database)

    def manage(*args: str, expect: int) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == expect, proc.stdout + proc.stderr
        return proc

    manage("makemigrations", "polls", expect=0)
    out = manage("checkmigrations", "--all", expect=0).stdout
    assert "installed package(s), shown but not failing" in out
    # Without the scope, the same project fails on day one.
    env["GOVERN_PACKAGES"] = "1"
    manage("checkmigrations", "--all", expect=1)
