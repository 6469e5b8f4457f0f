"""One migration graph per run, built again only when the applied migrations call for it.

* ``safemigrate`` and the ``migrate`` override build the graph once per run (the gate, the
  ledger's bootstrap and Django's executor share it), counted in the child process by
  wrapping ``MigrationGraph.__init__``;
* a loader built later in the same process still reads the applied migrations from the
  database: a migration recorded by another process in between is seen, and left out
  of the plan. (Within a governed run, under the migration lock, the readers share one
  read until the run records a migration itself: ``execution.recorded``; after that
  write the next read is a new one, which Django's check of squashed migrations needs.)
* with a squashed migration, a change in the applied state of a migration it replaces
  builds the graph again (Django keeps the squashed migration or removes it by that state);
* Django's plan is computed once for the same targets and applied migrations, and again
  when another process recorded a migration in between.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.helpers import applied, command_env, connect, copy_scenario, fresh_database, run_command

COUNT_GRAPHS = textwrap.dedent(
    """
    import sys
    import django
    from django.db.migrations import graph

    built = []
    original = graph.MigrationGraph.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    graph.MigrationGraph.__init__ = counting
    django.setup()
    from django.core.management import ManagementUtility

    name = sys.argv[1]
    command = ManagementUtility(["manage.py", name]).fetch_command(name)
    built.clear()  # the system checks run inside the command: counted from here
    command.run_from_argv(["manage.py", name, "--noinput"])
    print(f"graphs built: {len(built)}")
    """
)


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


@pytest.mark.parametrize("command", ["safemigrate", "migrate"])
def test_a_run_builds_the_migration_graph_once(database, tmp_path, command):
    copy_scenario("basic", tmp_path)
    env = command_env(database, apps=["basic"], pythonpath=[tmp_path])
    # A deployed database: everything but the last two migrations of the app applied.
    run_command(["safemigrate", "basic", "0001"], env, expect=0)
    result = subprocess.run(
        [sys.executable, "-c", COUNT_GRAPHS, command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("basic", "0003_item_sku") in applied(database)
    assert "graphs built: 1\n" in result.stdout, result.stdout + result.stderr


RECORDED_MEANWHILE = textwrap.dedent(
    """
    import sys
    import django

    django.setup()
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django_safemigrate.plan import SharedDiskLoader, sharing_disk_scan

    with sharing_disk_scan():
        first = SharedDiskLoader(connection)
        print("first", sorted(k for k in first.applied_migrations if k[0] == "basic"))
        print("ready", flush=True)
        sys.stdin.readline()  # another process records a migration meanwhile
        executor = MigrationExecutor(connection)
        executor.loader = SharedDiskLoader(connection)
        later = executor.loader
        print("same graph", later.graph is first.graph)
        print("later", sorted(k for k in later.applied_migrations if k[0] == "basic"))
        plan = executor.migration_plan(later.graph.leaf_nodes())
        print("plan", sorted(m.name for m, _ in plan if m.app_label == "basic"))
    """
)


def test_a_later_loader_of_the_run_sees_migrations_recorded_meanwhile(database, tmp_path):
    copy_scenario("basic", tmp_path)
    env = command_env(database, apps=["basic"], pythonpath=[tmp_path])
    run_command(["safemigrate", "basic", "0001"], env, expect=0)
    child = subprocess.Popen(
        [sys.executable, "-c", RECORDED_MEANWHILE],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdin is not None
    lines = []
    for line in child.stdout:
        lines.append(line)
        if line.startswith("ready"):
            break
    # This test process records 0002 as applied while the child's run is under way.
    with connect(database) as conn:
        conn.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('basic', '0002_item_price', now())"
        )
    out, err = child.communicate("go\n", timeout=120)
    text = "".join(lines) + out
    assert child.returncode == 0, text + err
    assert "first [('basic', '0001_initial')]" in text
    assert "same graph True" in text  # no squashed migration: the graph is shared
    assert "later [('basic', '0001_initial'), ('basic', '0002_item_price')]" in text
    assert "plan ['0003_item_sku']" in text


SQUASHED = {
    "__init__.py": "",
    "models.py": "",
    "migrations/__init__.py": "",
    "migrations/0001_initial.py": """
        from django.db import migrations, models

        class Migration(migrations.Migration):
            initial = True
            operations = [
                migrations.CreateModel("Thing", [("id", models.BigAutoField(primary_key=True))]),
            ]
    """,
    "migrations/0002_thing_name.py": """
        from django.db import migrations, models

        class Migration(migrations.Migration):
            dependencies = [("sq_app", "0001_initial")]
            operations = [migrations.AddField("thing", "name", models.TextField(null=True))]
    """,
    "migrations/0001_squashed_0002_thing_name.py": """
        from django.db import migrations, models

        class Migration(migrations.Migration):
            initial = True
            replaces = [("sq_app", "0001_initial"), ("sq_app", "0002_thing_name")]
            operations = [
                migrations.CreateModel(
                    "Thing",
                    [
                        ("id", models.BigAutoField(primary_key=True)),
                        ("name", models.TextField(null=True)),
                    ],
                ),
            ]
    """,
}

SQUASHED_CHILD = textwrap.dedent(
    """
    import sys
    import django

    django.setup()
    from django.db import connection
    from django_safemigrate.plan import SharedDiskLoader, sharing_disk_scan

    def nodes(loader):
        return sorted(k[1] for k in loader.graph.nodes if k[0] == "sq_app")

    with sharing_disk_scan():
        first = SharedDiskLoader(connection)
        print("first", nodes(first))
        print("ready", flush=True)
        sys.stdin.readline()
        later = SharedDiskLoader(connection)
        print("same graph", later.graph is first.graph)
        print("later", nodes(later))
        again = SharedDiskLoader(connection)
        print("shared again", again.graph is later.graph)
    """
)


def _squashed_app(database: str, tmp_path) -> dict[str, str]:
    """The app ``sq_app`` (two migrations and their squash) on the path, ``django_migrations``
    created; the commands' environment."""
    for name, text in SQUASHED.items():
        path = tmp_path / "sq_app" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    env = command_env(database, apps=["sq_app"], pythonpath=[tmp_path])
    run_command(["migrate", "contenttypes"], env, expect=0)
    return env


def test_a_squashed_migration_whose_targets_changed_rebuilds_the_graph(database, tmp_path):
    env = _squashed_app(database, tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", SQUASHED_CHILD],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line)
        if line.startswith("ready"):
            break
    # Half of the squashed migration's targets become applied: Django cannot use it.
    with connect(database) as conn:
        conn.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('sq_app', '0001_initial', now())"
        )
    out, err = child.communicate("go\n", timeout=120)
    text = "".join(lines) + out
    assert child.returncode == 0, text + err
    assert "first ['0001_squashed_0002_thing_name']" in text
    assert "same graph False" in text
    assert "later ['0001_initial', '0002_thing_name']" in text
    assert "shared again True" in text


PLAN_TWICE = textwrap.dedent(
    """
    import sys
    import django

    django.setup()
    from django.db import connection
    from django.db.migrations import graph
    from django_safemigrate.execution.executor import LedgerExecutor
    from django_safemigrate.plan import sharing_disk_scan

    walks = []
    original = graph.MigrationGraph.forwards_plan

    def counting(self, target):
        walks.append(target)
        return original(self, target)

    graph.MigrationGraph.forwards_plan = counting

    def plan():
        executor = LedgerExecutor(connection)
        walks.clear()
        found = executor.migration_plan(executor.loader.graph.leaf_nodes())
        return sorted(m.name for m, _ in found if m.app_label == "basic"), len(walks)

    with sharing_disk_scan():
        print("first", *plan())
        print("again", *plan())
        print("ready", flush=True)
        sys.stdin.readline()  # another process records a migration meanwhile
        print("later", *plan())
    """
)


def test_the_plan_is_computed_once_for_the_same_applied_migrations(database, tmp_path):
    copy_scenario("basic", tmp_path)
    env = command_env(database, apps=["basic"], pythonpath=[tmp_path])
    run_command(["safemigrate", "basic", "0001"], env, expect=0)
    child = subprocess.Popen(
        [sys.executable, "-c", PLAN_TWICE],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line)
        if line.startswith("ready"):
            break
    with connect(database) as conn:
        conn.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('basic', '0002_item_price', now())"
        )
    out, err = child.communicate("go\n", timeout=120)
    text = "".join(lines) + out
    assert child.returncode == 0, text + err
    first = next(line for line in text.splitlines() if line.startswith("first"))
    assert first.startswith("first ['0002_item_price', '0003_item_sku'] "), text
    assert int(first.split()[-1]) > 0, text  # the history was walked
    # The same targets and applied migrations: Django's plan is not computed again.
    assert "again ['0002_item_price', '0003_item_sku'] 0\n" in text, text
    # Another process recorded 0002: the plan is computed again, without it.
    later = next(line for line in text.splitlines() if line.startswith("later"))
    assert later.startswith("later ['0003_item_sku'] "), text
    assert int(later.split()[-1]) > 0, text


def test_a_squashed_migration_is_recorded_once_the_run_applied_its_last_target(database, tmp_path):
    # The run reads the applied migrations once under its lock (execution.recorded);
    # recording 0002 drops that read, so Django's check that follows sees 0002 and
    # records the squashed migration whose targets are now all applied.
    env = _squashed_app(database, tmp_path)
    with connect(database) as conn:
        conn.execute("CREATE TABLE sq_app_thing (id bigserial PRIMARY KEY)")
        conn.execute(
            "INSERT INTO django_migrations (app, name, applied) "
            "VALUES ('sq_app', '0001_initial', now())"
        )
    result = run_command(["safemigrate"], env, expect=0)
    assert "Applying sq_app.0002_thing_name... OK" in result.out
    assert {name for app_label, name in applied(database) if app_label == "sq_app"} == {
        "0001_initial",
        "0002_thing_name",
        "0001_squashed_0002_thing_name",
    }
