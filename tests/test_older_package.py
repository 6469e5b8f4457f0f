"""What the older django-safemigrate package leaves behind in a project that switches.

Its ``INSTALLED_APPS`` spelling (``django_safemigrate.apps.SafeMigrateConfig``) is this
app under another name; its distribution installed beside this one is a system-check
error (``safemigrate.E022``). tests/test_distribution.py installs the real one from PyPI
into a clean environment; here a distribution's metadata on ``sys.path`` stands for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.apps import AppConfig, apps

from django_safemigrate.apps import SafeMigrateConfig, SafemigrateConfig
from django_safemigrate.checks import check_older_package
from tests.helpers import ROOT, command_env, copy_scenario, fresh_database, query, run_command

# The older package's settings and commands: the same on every Django version,
# so CI runs them in its first pass only.
pytestmark = pytest.mark.once

OLDER_SPELLING = "django_safemigrate.apps.SafeMigrateConfig"


# -- the older INSTALLED_APPS entry ------------------------------------------------------------


def test_the_plain_entry_still_resolves_to_this_apps_config():
    # Two AppConfig subclasses in apps.py: without ``default = False`` on the alias, Django
    # would fall back to a bare AppConfig for "django_safemigrate", and no check would run.
    assert type(AppConfig.create("django_safemigrate")) is SafemigrateConfig
    assert type(apps.get_app_config("django_safemigrate")) is SafemigrateConfig


def test_the_older_entry_is_the_same_app():
    older = AppConfig.create(OLDER_SPELLING)
    assert isinstance(older, SafeMigrateConfig)
    assert isinstance(older, SafemigrateConfig)
    ours = apps.get_app_config("django_safemigrate")
    assert (older.name, older.label, str(older.verbose_name), older.default_auto_field) == (
        ours.name,
        ours.label,
        str(ours.verbose_name),
        ours.default_auto_field,
    )
    assert type(older).ready is SafemigrateConfig.ready


@pytest.fixture
def older_spelling(tmp_path: Path) -> Path:
    copy_scenario("basic", tmp_path)
    (tmp_path / "older_spelling_settings.py").write_text(
        "from tests.scenario_settings import *  # noqa: F403\n\n"
        "INSTALLED_APPS = [\n"
        f"    {OLDER_SPELLING!r} if app == 'django_safemigrate' else app\n"
        "    for app in INSTALLED_APPS  # noqa: F405\n"
        "]\n"
    )
    return tmp_path


def test_a_project_listing_the_older_entry_checks_migrates_and_keeps_a_ledger(older_spelling):
    with fresh_database("older") as name:
        env = command_env(
            name,
            apps=("basic",),
            settings="strict",
            module="older_spelling_settings",
            pythonpath=[older_spelling],
        )
        checked = run_command(["check"], env, expect=0)
        # This app's checks are registered (ready() ran): the older mode is named.
        assert "safemigrate.W003" in checked.err
        run_command(["safemigrate"], env, expect=0)
        assert query(name, "SELECT count(*) FROM django_migrations WHERE app = 'basic'") == [(3,)]
        outcomes = query(name, "SELECT command, outcome FROM django_safemigrate_run")
        assert ("safemigrate", "applied") in outcomes
        again = run_command(["safemigrate"], env, expect=0)
        assert "No migrations to apply" in again.out or "nothing to do" in again.output.lower()


# -- the older distribution installed beside this one -------------------------------------------


def fake_distribution(
    site: Path, *, installer: bool = True, direct_url: dict[str, object] | None = None
) -> Path:
    """The metadata an installer leaves for django-safemigrate 6.0 in ``site``."""
    info = site / "django_safemigrate-6.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.4\nName: django-safemigrate\nVersion: 6.0\n"
        "Summary: Safely run migrations before deployment\n"
    )
    if installer:
        (info / "INSTALLER").write_text("pip\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return info


def test_no_older_distribution_no_error():
    assert check_older_package() == []


def test_the_older_distribution_installed_is_an_error_saying_what_to_uninstall(
    tmp_path, monkeypatch
):
    fake_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (error,) = check_older_package()
    assert error.id == "safemigrate.E022"
    assert error.is_serious()
    assert error.msg.startswith(
        "The older django-safemigrate package (version 6.0) is installed in this environment "
        "beside django-pg-safemigrate."
    )
    assert "\n" not in error.msg
    assert error.hint.startswith(
        "pip uninstall django-safemigrate django-pg-safemigrate && pip install "
        "django-pg-safemigrate"
    )


def test_an_editable_install_of_another_tree_counts(tmp_path, monkeypatch):
    other = tmp_path / "older-checkout"
    other.mkdir()
    fake_distribution(
        tmp_path / "site",
        direct_url={"url": other.as_uri(), "dir_info": {"editable": True}},
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert [e.id for e in check_older_package()] == ["safemigrate.E022"]


@pytest.mark.parametrize(
    "leftover",
    [
        # An ``*.egg-info`` a build left in a source tree: nothing was installed.
        {"installer": False},
        # This very checkout, installed in editable mode under the former name.
        {"direct_url": {"url": ROOT.as_uri(), "dir_info": {"editable": True}}},
    ],
    ids=["build-leftover", "this-checkout-under-the-former-name"],
)
def test_stale_metadata_of_this_project_is_not_the_older_package(tmp_path, monkeypatch, leftover):
    fake_distribution(tmp_path, **leftover)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert check_older_package() == []


def test_manage_py_check_fails_while_the_older_distribution_is_installed(tmp_path):
    fake_distribution(tmp_path / "site")
    env = command_env(None, database_url="postgres://postgres@127.0.0.1:1/none")
    env["PYTHONPATH"] = f"{tmp_path / 'site'}:{env['PYTHONPATH']}"
    result = run_command(["check"], env, expect=1)
    assert "safemigrate.E022" in result.err
    assert "Uninstall both, since uninstalling django-safemigrate also deletes" in result.err
    assert "Traceback" not in result.err


# -- a database the older package migrated ------------------------------------------------------


def test_a_database_migrated_by_the_older_package_is_refused_with_the_repair(tmp_path):
    copy_scenario("basic", tmp_path)
    with fresh_database("olderdb") as name:
        # What the older package's only migration leaves: its table, and django_migrations
        # recording django_safemigrate.0001_initial, the name of this app's first migration.
        query(
            name,
            "CREATE TABLE django_migrations (id bigserial PRIMARY KEY, app varchar(255) NOT NULL,"
            " name varchar(255) NOT NULL, applied timestamptz NOT NULL)",
        )
        query(
            name,
            "CREATE TABLE django_safemigrate_safemigration (id bigserial PRIMARY KEY, "
            "created timestamptz NOT NULL, app varchar(255) NOT NULL, "
            "name varchar(255) NOT NULL, detected timestamptz NOT NULL)",
        )
        query(
            name,
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('django_safemigrate', '0001_initial', now())",
        )
        env = command_env(name, apps=("basic",), settings="strict", pythonpath=[tmp_path])
        repair = (
            "DELETE FROM django_migrations WHERE app = 'django_safemigrate' AND "
            "name = '0001_initial'"
        )
        for command, code in (("migrate", 1), ("safemigrate", 2)):
            refused = run_command([command], env, expect=code)
            assert "was migrated by the older django-safemigrate package" in refused.err
            assert repair in refused.err
            assert "Traceback" not in refused.err
        assert query(name, "SELECT to_regclass('django_safemigrate_run') IS NULL") == [(True,)]

        query(name, repair)
        run_command(["migrate"], env, expect=0)
        assert query(name, "SELECT command, outcome FROM django_safemigrate_run") == [
            ("migrate", "applied")
        ]
        # The older table is left alone.
        assert query(name, "SELECT count(*) FROM django_safemigrate_safemigration") == [(0,)]
