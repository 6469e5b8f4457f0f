"""``bench/generate_project.py`` writes a project whose migrations match its models.

The speed benchmark is only as good as the projects it measures: they must load, their
models must be the final state of their migrations (``makemigrations --check`` finds
nothing), the same seed must write the same project, and adding migrations to a written
project must continue the same history.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parent.parent
SIZE = 40


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_project", ROOT / "bench" / "generate_project.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


def manage(
    project: Path, *args: str, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``manage.py`` of the generated project, with its own settings.

    Without ``database_url`` the project runs on Django's dummy backend.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PYTHONPATH"}}
    env["DJANGO_SETTINGS_MODULE"] = "project.settings"
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated") / "project"
    generator.generate_project(root, SIZE, seed=7)
    return root


def migration_files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.glob("*/migrations/0*.py"))
    }


def models_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.glob("*/models.py"))}


def test_writes_the_requested_number_of_migrations_over_ten_apps(project: Path) -> None:
    files = migration_files(project)
    assert len(files) == SIZE
    apps = {name.split("/")[0] for name in files}
    assert len(apps) == 10
    assert all(sum(f.startswith(app + "/") for f in files) == SIZE // 10 for app in apps)


def test_migrations_match_the_models(project: Path) -> None:
    result = manage(project, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_history_has_cross_app_dependencies_and_the_whole_mix(project: Path) -> None:
    text = "\n".join(migration_files(project).values())
    for operation in ("CreateModel", "AddField", "ForeignKey", "AlterField"):
        assert f"{operation}(" in text
    apps = {path.split("/")[0] for path in migration_files(project)}
    crossing = [
        line
        for path, source in migration_files(project).items()
        for line in source.splitlines()
        if line.strip().startswith('("')
        and line.strip().split('"')[1] in apps - {path.split("/")[0]}
    ]
    assert crossing, "no migration depends on another app's"


def test_the_mix_covers_every_kind_of_operation_on_a_larger_history() -> None:
    project = generator.build(400, seed=7)
    text = "\n".join(m.source() for m in project.migrations)
    for operation in (
        "CreateModel",
        "AddField",
        "AddIndex",
        "AlterField",
        "RemoveField",
        "RenameField",
        "AddConstraint",
        "RunPython",
        "RunSQL",
    ):
        assert f"migrations.{operation}(" in text, operation


def test_checkmigrations_judges_every_generated_migration(project: Path) -> None:
    # --offline never connects, but renders with the configured (PostgreSQL) backend.
    result = manage(
        project,
        *("checkmigrations", "--all", "--offline", "--fail-on", "never"),
        database_url=os.environ["DATABASE_URL"],
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_same_seed_same_project_and_added_migrations_continue_it(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    generator.generate_project(first, SIZE, seed=3)
    generator.generate_project(second, SIZE + 3, seed=3)
    added = generator.add_migrations(first, SIZE, 3, seed=3)
    assert len(added) == 3
    assert migration_files(first) == migration_files(second)
    assert models_files(first) == models_files(second)
    result = manage(first, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
