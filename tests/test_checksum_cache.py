"""The cache of applied migrations' checksums, end to end: real ``safemigrate`` processes.

* it lives in ``$XDG_CACHE_HOME/django-safemigrate/`` and a run uses it (a cached value,
  when every file it depends on is unchanged, is what the run compares);
* an edited migration file that keeps its size and modification time is still caught
  (the key is the SHA-256 of the bytes; run without bytecode, so Python compiles the
  edited source);
* an edited helper module that the migration reaches two modules away is still seen;
* a corrupt cache file is ignored and replaced; ``SAFEMIGRATE_CHECKSUM_CACHE=off`` turns
  the cache off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import applied, command_env, copy_scenario, fresh_database, run_command

# File hashing, the same on every Django version: CI runs it in its first pass.
pytestmark = pytest.mark.once


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


def cache_files(cache_home: Path) -> list[Path]:
    return sorted((cache_home / "django-safemigrate").glob("checksums-*.json"))


def cached_entries(cache_home: Path) -> dict[str, dict]:
    (path,) = cache_files(cache_home)
    return json.loads(path.read_text())["entries"]


def scenario_env(database: str, tmp_path: Path, app: str) -> tuple[dict[str, str], Path]:
    cache_home = tmp_path / "cache"
    copy_scenario(app, tmp_path)
    env = command_env(
        database,
        apps=[app],
        pythonpath=[tmp_path],
        extra={"XDG_CACHE_HOME": str(cache_home), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return env, cache_home


def edit_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    assert len(old) == len(new)
    before = path.stat()
    text = path.read_text()
    assert text.count(old) == 1, (old, text)
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


COUNT_COMPUTED = textwrap.dedent(
    """
    import django

    django.setup()
    from django.core.management import ManagementUtility
    from django_safemigrate import checksum_cache

    computed = []
    original = checksum_cache.checksum_and_modules

    def counting(migration):
        computed.append(f"{migration.app_label}.{migration.name}")
        return original(migration)

    checksum_cache.checksum_and_modules = counting
    command = ManagementUtility(["manage.py", "safemigrate"]).fetch_command("safemigrate")
    command.run_from_argv(["manage.py", "safemigrate", "--noinput"])
    print("computed:", ",".join(sorted(computed)) or "none")
    """
)


def count_computed(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", COUNT_COMPUTED],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_cache_is_kept_per_project_and_used(database, tmp_path):
    env, cache_home = scenario_env(database, tmp_path, "basic")
    run_command(["safemigrate"], env, expect=0)  # a first deploy: everything applied
    # The first check of the applied migrations computes each checksum and fills the cache.
    assert "basic.0002_item_price" in count_computed(env)
    entries = cached_entries(cache_home)
    entry = entries["basic.0002_item_price"]
    assert entry["checksum"].startswith("sha256:v2:")
    migration_file = tmp_path / "basic" / "migrations" / "0002_item_price.py"
    assert entry["files"]["basic.migrations.0002_item_price"][0] == str(migration_file)
    # The next run computes none: every applied migration's checksum comes from the cache.
    assert count_computed(env) == "computed: none"
    # A cached value that differs from the ledger's is computed again, never reported as
    # it is (a wrong value in the cache, which a run never writes, changes nothing).
    (path,) = cache_files(cache_home)
    data = json.loads(path.read_text())
    data["entries"]["basic.0002_item_price"]["checksum"] = "sha256:v2:" + "0" * 64
    path.write_text(json.dumps(data))
    assert count_computed(env) == "computed: basic.0002_item_price"
    assert count_computed(env) == "computed: none"


def test_an_edit_that_keeps_size_and_mtime_is_caught(database, tmp_path):
    env, cache_home = scenario_env(database, tmp_path, "basic")
    run_command(["safemigrate"], env, expect=0)
    run_command(["safemigrate"], env, expect=0)
    assert "basic.0002_item_price" in cached_entries(cache_home)
    edit_keeping_size_and_mtime(
        tmp_path / "basic" / "migrations" / "0002_item_price.py",
        "IntegerField(null=True)",
        "IntegerField(null=None)",
    )
    stopped = run_command(["safemigrate"], env, expect=3)
    assert "Applied migrations were edited after they were applied: basic.0002_item_price" in (
        stopped.err
    ), stopped.err


def test_an_edited_helper_module_is_seen(database, tmp_path):
    env, cache_home = scenario_env(database, tmp_path, "ck_helpers")
    run_command(["safemigrate"], env, expect=0)
    assert ("ck_helpers", "0002_mark_items") in applied(database)
    second = run_command(["safemigrate"], env, expect=0)
    assert "reach changed" not in second.err
    files = cached_entries(cache_home)["ck_helpers.0002_mark_items"]["files"]
    assert {"ck_helpers.cleanup", "ck_helpers.limits"} <= set(files)
    # The constant the RunPython helper reads, imported by the helper from a third module.
    edit_keeping_size_and_mtime(tmp_path / "ck_helpers" / "limits.py", '"keep"', '"kept"')
    third = run_command(["safemigrate"], env, expect=0)
    assert "the project code that applied migrations reach changed" in third.err, third.err
    assert "ck_helpers.0002_mark_items" in third.err


def test_a_corrupt_cache_is_ignored_and_replaced(database, tmp_path):
    env, cache_home = scenario_env(database, tmp_path, "basic")
    run_command(["safemigrate"], env, expect=0)
    run_command(["safemigrate"], env, expect=0)
    (path,) = cache_files(cache_home)
    for garbage in (b"\x00\xff not json", b'{"environment": 1, "entries": [1, 2]}', b"[]"):
        path.write_bytes(garbage)
        result = run_command(["safemigrate"], env, expect=0)
        assert "No migrations to apply." in result.out, result.output
        assert "basic.0002_item_price" in cached_entries(cache_home)
    # An unreadable cache (a directory where the file should be) is no error either.
    path.unlink()
    path.mkdir()
    run_command(["safemigrate"], env, expect=0)


def test_the_cache_can_be_turned_off(database, tmp_path):
    env, cache_home = scenario_env(database, tmp_path, "basic")
    env["SAFEMIGRATE_CHECKSUM_CACHE"] = "off"
    run_command(["safemigrate"], env, expect=0)
    run_command(["safemigrate"], env, expect=0)
    assert cache_files(cache_home) == []


def test_code_of_an_installed_package_is_cached_by_its_version(database, tmp_path):
    # A migration that refers to another installed distribution's code (a validator): the
    # checksum counts that code by distribution and version, and so does the cache entry.
    env, cache_home = scenario_env(database, tmp_path, "basic")
    for path in (
        tmp_path / "basic" / "migrations" / "0003_item_sku.py",
        tmp_path / "basic" / "models.py",
    ):
        text = path.read_text()
        assert text.count("null=True)") >= 1
        text = "import dj_database_url\n" + text.replace(
            "max_length=20, null=True)",
            "max_length=20, null=True, validators=[dj_database_url.parse])",
        )
        path.write_text(text)
    run_command(["safemigrate"], env, expect=0)
    assert "basic.0003_item_sku" in count_computed(env)
    files = cached_entries(cache_home)["basic.0003_item_sku"]["files"]
    assert files["dj_database_url"][0] == "installed", files
    assert files["dj_database_url"][1].startswith("dj-database-url=="), files
    assert count_computed(env) == "computed: none"
    # Another version of the package installed: the entry is not used.
    (path,) = cache_files(cache_home)
    data = json.loads(path.read_text())
    data["entries"]["basic.0003_item_sku"]["files"]["dj_database_url"][1] = "dj-database-url==0.1"
    path.write_text(json.dumps(data))
    assert count_computed(env) == "computed: basic.0003_item_sku"
    assert count_computed(env) == "computed: none"
