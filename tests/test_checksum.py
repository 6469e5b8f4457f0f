"""Checksums follow what a migration will execute, not how its files are written."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import migrations

from django_safemigrate import checksum_v1
from django_safemigrate.checksum import (
    PREFIX,
    ChecksumUnavailable,
    Comparison,
    Origin,
    compare,
    migration_checksum,
    module_origin,
)
from tests.helpers import ROOT

_counter = itertools.count()

LAMBDA = (
    'migrations.RunPython(lambda apps, schema_editor: apps.get_model("shop", "Item")'
    ".objects.update(price=2), migrations.RunPython.noop),"
)

BASE = """
from django.db import migrations, models

from ckpkg import helpers


def forwards(apps, schema_editor):
    Item = apps.get_model(u"shop", "Item")
    Item.objects.filter(price__isnull=True).update(price=0)
    helpers.touch(Item)


class Migration(migrations.Migration):
    atomic = True
    dependencies = [("shop", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [
        migrations.AddField("item", "price", models.IntegerField(null=True, default=None)),
        migrations.RunSQL(
            "UPDATE shop_item SET price = 1 WHERE price IS NULL", migrations.RunSQL.noop
        ),
        migrations.RunSQL([("UPDATE shop_item SET price = %s WHERE id = %s", [1, 2])]),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        LAMBDA_OPERATION
        Custom(),
    ]
"""

HELPERS = """
from ckpkg.limits import LIMIT

PRICE = 0


def touch(Item):
    Item.objects.filter(price=PRICE).update(price=LIMIT)
    return clamp(LIMIT)


def clamp(value):
    return min(value, 100)
"""

LIMITS = """
LIMIT = 10
"""

OPERATIONS = """
from django.db.migrations.operations.base import Operation


class Custom(Operation):
    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        schema_editor.execute("UPDATE shop_item SET price = 3")
"""

BASE = BASE.replace(
    "from ckpkg import helpers\n",
    "from ckpkg import helpers\nfrom ckpkg.operations import Custom\n",
)
BASE = BASE.replace("LAMBDA_OPERATION", LAMBDA)
FILES = {"migration": BASE, "helpers": HELPERS, "limits": LIMITS, "operations": OPERATIONS}


def load(files: dict[str, str], tmp_path: Path) -> migrations.Migration:
    """Write ``files`` as the package ``ckpkg`` (one fixed name) and load its migration."""
    root = tmp_path / f"m{next(_counter)}"
    package = root / "ckpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, source in files.items():
        (package / f"{name}.py").write_text(textwrap.dedent(source))
    for name in [m for m in sys.modules if m == "ckpkg" or m.startswith("ckpkg.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        import importlib

        module = importlib.import_module("ckpkg.migration")
        return module.Migration("0002_item_price", "shop")
    finally:
        sys.path.remove(str(root))


def checksum_of(source: str, tmp_path: Path, **files: str) -> str:
    return migration_checksum(load({**FILES, "migration": source, **files}, tmp_path))


SAME_MEANING: dict[str, str | tuple[str, str]] = {
    "comments and blank lines": BASE.replace(
        "class Migration", "# Why: prices were optional.\n\n\nclass Migration"
    ),
    "reformatted call": BASE.replace(
        'migrations.AddField("item", "price", models.IntegerField(null=True, default=None)),',
        "migrations.AddField(\n        'item',\n        'price',\n"
        "        models.IntegerField(default=None, null=True),  # keyword order\n    ),",
    ),
    "SQL whitespace, case of keywords and comments": BASE.replace(
        '"UPDATE shop_item SET price = 1 WHERE price IS NULL"',
        '"""\n  update shop_item -- backfill\n     set price = 1\n   where price is null\n"""',
    ),
    "comment and docstring-free reformat inside RunPython code": BASE.replace(
        "    Item.objects.filter(price__isnull=True).update(price=0)",
        "    # Only rows without a price.\n    Item.objects.filter(\n        price__isnull=True\n"
        "    ).update(price=0)",
    ),
    "dependency order": BASE.replace(
        '[("shop", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]',
        '[("auth", "0012_alter_user_first_name_max_length"), ("shop", "0001_initial")]',
    ),
    "imports reordered": BASE.replace(
        "from django.db import migrations, models", "from django.db import models, migrations"
    ),
    "lambda reformatted by black (split across lines)": BASE.replace(
        LAMBDA,
        'migrations.RunPython(\n            lambda apps, schema_editor: apps.get_model("shop", '
        '"Item").objects.update(\n                price=2\n            ),\n'
        "            migrations.RunPython.noop,\n        ),",
    ),
    "lambda wrapped in parentheses": BASE.replace(
        LAMBDA,
        "migrations.RunPython(\n            (\n                lambda apps, schema_editor: "
        'apps.get_model("shop", "Item")\n                .objects.update(price=2)\n'
        "            ),\n            migrations.RunPython.noop,\n        ),",
    ),
    "u prefix removed": BASE.replace('get_model(u"shop"', 'get_model("shop"'),
    "single quotes": BASE.replace('get_model(u"shop", "Item")', "get_model('shop', 'Item')"),
    "helper: comments, blank lines, formatting": (
        "helpers",
        HELPERS.replace(
            "def clamp(value):\n    return min(value, 100)",
            "# Bounds.\n\n\ndef clamp(\n    value,\n):\n    return min(  # at most 100\n"
            "        value, 100\n    )",
        ),
    ),
    "helper: an unrelated function added": (
        "helpers",
        HELPERS + "\n\ndef unrelated():\n    return 1\n",
    ),
    "operation class: comment and docstring-free reformat": (
        "operations",
        OPERATIONS.replace(
            '        schema_editor.execute("UPDATE shop_item SET price = 3")',
            "        # Everything.\n        schema_editor.execute(\n"
            "            'UPDATE shop_item SET price = 3'\n        )",
        ),
    ),
    "SQL with parameters: whitespace and keyword case": BASE.replace(
        '"UPDATE shop_item SET price = %s WHERE id = %s"',
        '"update shop_item\\n   set price = %s\\n where id = %s"',
    ),
}

NEW_MEANING: dict[str, str | tuple[str, str]] = {
    "field type": BASE.replace("models.IntegerField(null=True", "models.BigIntegerField(null=True"),
    "field option": BASE.replace("null=True, default=None", "null=True, default=0"),
    "column name": BASE.replace('"item", "price"', '"item", "cost"'),
    "SQL value": BASE.replace("SET price = 1", "SET price = 2"),
    "SQL reverse": BASE.replace(
        'IS NULL", migrations.RunSQL.noop', 'IS NULL", "UPDATE shop_item SET price = NULL"'
    ),
    "RunPython body": BASE.replace("update(price=0)", "update(price=1)"),
    "RunPython reverse": BASE.replace(
        "migrations.RunPython(forwards, migrations.RunPython.noop)",
        "migrations.RunPython(forwards, forwards)",
    ),
    "operation order": BASE.replace(
        "        migrations.RunPython(forwards, migrations.RunPython.noop),\n", ""
    ).replace(
        "    operations = [\n",
        "    operations = [\n        migrations.RunPython(forwards, migrations.RunPython.noop),\n",
    ),
    "atomic": BASE.replace("atomic = True", "atomic = False"),
    "dependency": BASE.replace(
        "0012_alter_user_first_name_max_length", "0011_update_proxy_permissions"
    ),
    "extra operation": BASE.replace(
        "    operations = [\n",
        "    operations = [\n"
        '        migrations.AddField("item", "sku", models.TextField(null=True)),\n',
    ),
    "lambda body": BASE.replace("objects.update(price=2)", "objects.update(price=3)"),
    "string value (not its style)": BASE.replace('get_model(u"shop"', 'get_model(u"shops"'),
    "RunSQL parameter value": BASE.replace("[1, 2]", "[1, 3]"),
    "RunSQL parameter type: int to str": BASE.replace("[1, 2]", '[1, "2"]'),
    "RunSQL parameter type: int to bool": BASE.replace("[1, 2]", "[True, 2]"),
    "RunSQL parameter type: int to float": BASE.replace("[1, 2]", "[1.0, 2]"),
    "RunSQL parameter type: value to list": BASE.replace("[1, 2]", "[[1], 2]"),
    "RunSQL parameter order": BASE.replace("[1, 2]", "[2, 1]"),
    "RunSQL placeholder order": BASE.replace(
        "SET price = %s WHERE id = %s", "SET price = $2 WHERE id = $1"
    ),
    "RunSQL %% escape": BASE.replace("WHERE id = %s", "WHERE id = %s AND 'a%%' = 'a'"),
    "helper body: deletes rows": (
        "helpers",
        HELPERS.replace(
            "Item.objects.filter(price=PRICE).update(price=LIMIT)", "Item.objects.all().delete()"
        ),
    ),
    "helper of the helper (transitive)": (
        "helpers",
        HELPERS.replace("return min(value, 100)", "return min(value, 1000)"),
    ),
    "module constant the helper reads": ("helpers", HELPERS.replace("PRICE = 0", "PRICE = 1")),
    "constant imported from a third module": ("limits", LIMITS.replace("10", "11")),
    "custom operation class: database_forwards": (
        "operations",
        OPERATIONS.replace("UPDATE shop_item SET price = 3", "DELETE FROM shop_item"),
    ),
    "custom operation class: a new method": (
        "operations",
        OPERATIONS + "\n    def describe(self):\n        return 'custom'\n",
    ),
}


def variant(change: str | tuple[str, str], tmp_path: Path) -> str:
    if isinstance(change, str):
        return checksum_of(change, tmp_path)
    name, source = change
    assert source != FILES[name]
    return checksum_of(BASE, tmp_path, **{name: source})


def test_checksum_shape(tmp_path):
    checksum = checksum_of(BASE, tmp_path)
    assert re.fullmatch(r"sha256:v2:[0-9a-f]{64}", checksum)
    assert checksum.startswith(PREFIX)


@pytest.mark.parametrize("change", sorted(SAME_MEANING))
def test_same_meaning_same_checksum(change, tmp_path):
    assert SAME_MEANING[change] != BASE
    assert variant(SAME_MEANING[change], tmp_path) == checksum_of(BASE, tmp_path)


@pytest.mark.parametrize("change", sorted(NEW_MEANING))
def test_new_meaning_new_checksum(change, tmp_path):
    assert NEW_MEANING[change] != BASE
    assert variant(NEW_MEANING[change], tmp_path) != checksum_of(BASE, tmp_path)


def test_unparsable_sql_still_counts(tmp_path):
    broken = BASE.replace('"UPDATE shop_item SET price = 1 WHERE price IS NULL"', '"UPDATE ((("')
    other = BASE.replace('"UPDATE shop_item SET price = 1 WHERE price IS NULL"', '"UPDATE ((( x"')
    assert checksum_of(broken, tmp_path) != checksum_of(other, tmp_path)


# Values with no literal form: sets and dicts in any order, objects taken structurally.
AWKWARD = BASE.replace(
    "class Migration(migrations.Migration):",
    """class Marker:
    def __init__(self, tags):
        self.tags = tags
        self.limit = 3


class Migration(migrations.Migration):""",
).replace(
    "migrations.RunPython(forwards, migrations.RunPython.noop),",
    "migrations.RunPython(forwards, migrations.RunPython.noop, hints={"
    "'tags': {'b', 'a', 'c', 'zz', 'q'}, 'marker': Marker(frozenset({'x', 'y', 'w'})), "
    "'when': {'z': 1, 'a': 2}}),",
)

INTERPRETER_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import django
django.setup()
from django.db.migrations.loader import MigrationLoader
from django_safemigrate.checksum import migration_checksum
import ckpkg.migration
loader = MigrationLoader(None)
found = sorted((k, migration_checksum(m)) for k, m in loader.disk_migrations.items())
found.append((("shop", "awkward"), migration_checksum(ckpkg.migration.Migration("0002", "shop"))))
print(found)
"""


def other_interpreters() -> list[str]:
    """Interpreters of another Python version with this project installed (optional)."""
    found = []
    for candidate in [
        os.environ.get("SAFEMIGRATE_TEST_OTHER_PYTHON"),
        ROOT / ".venv312/bin/python",
    ]:
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run(
            [str(candidate), "-c", "import django, pglast, django_safemigrate"],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            found.append(str(candidate))
    return found


@pytest.mark.parametrize("python", ["seeds", "other-version"])
def test_checksum_is_the_same_in_another_interpreter(python, tmp_path):
    """Hash seeds, set ordering, object addresses and the Python version do not leak in."""
    root = tmp_path / "awkward"
    (root / "ckpkg").mkdir(parents=True)
    (root / "ckpkg" / "__init__.py").write_text("")
    for name, source in {**FILES, "migration": AWKWARD}.items():
        (root / "ckpkg" / f"{name}.py").write_text(textwrap.dedent(source))
    runs = [(sys.executable, "1"), (sys.executable, "2"), (sys.executable, "random")]
    if python == "other-version":
        others = other_interpreters()
        if not others:
            pytest.skip("no other Python version with this project installed")
        runs = [(sys.executable, "3"), *((other, "4") for other in others)]
    outputs = {}
    for interpreter, seed in runs:
        proc = subprocess.run(
            [interpreter, "-c", INTERPRETER_SCRIPT, str(root)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            env={
                **os.environ,
                "PYTHONHASHSEED": seed,
                "DJANGO_SETTINGS_MODULE": "example_site.settings",
                "PYTHONPATH": str(ROOT),
            },
        )
        assert proc.returncode == 0, proc.stderr
        version = subprocess.run(
            [interpreter, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        outputs[(interpreter, seed, version)] = proc.stdout
    assert len(set(outputs.values())) == 1, outputs.keys()
    text = next(iter(outputs.values()))
    assert "('shop', '0011_backfill_customer_email_normalized')" in text
    assert "('shop', 'awkward')" in text
    if python == "other-version":
        assert len({key[2] for key in outputs}) > 1, "the same Python version twice"


def test_an_object_is_taken_by_its_structure_not_its_repr(tmp_path):
    first = checksum_of(AWKWARD, tmp_path)
    assert first == checksum_of(AWKWARD, tmp_path)
    assert first != checksum_of(AWKWARD.replace("self.limit = 3", "self.limit = 4"), tmp_path)
    # Version 1 hashed its repr, with a memory address in it.
    migration = load({**FILES, "migration": AWKWARD}, tmp_path)
    assert re.search(r" at 0x[0-9a-f]+", checksum_v1.payload(migration, migration.operations))


def test_a_value_with_no_canonical_form_is_refused_by_name(tmp_path):
    source = BASE.replace(
        "class Migration(migrations.Migration):",
        "class Opaque:\n    __slots__ = ()\n\n\nclass Migration(migrations.Migration):",
    ).replace(
        "migrations.RunPython.noop),\n        Custom()",
        "migrations.RunPython.noop, hints={'x': Opaque()}),\n        Custom()",
    )
    assert "hints={'x': Opaque()}" in source
    with pytest.raises(ChecksumUnavailable) as caught:
        checksum_of(source, tmp_path)
    message = str(caught.value)
    assert "shop.0002_item_price" in message
    assert "ckpkg.migration.Opaque" in message
    assert " at 0x" not in message


def test_operations_inserted_by_pre_migrate_handlers_do_not_count(tmp_path):
    from django.contrib.contenttypes.management import inject_rename_contenttypes_operations

    source = BASE.replace(
        "    operations = [\n",
        '    operations = [\n        migrations.RenameModel("Thing", "Item"),\n',
    )
    migration = load({**FILES, "migration": source}, tmp_path)
    before = migration_checksum(migration)
    count = len(migration.operations)
    inject_rename_contenttypes_operations(plan=[(migration, False)])
    assert len(migration.operations) == count + 1, "contenttypes inserted its operation"
    assert migration_checksum(migration) == before


def test_installed_packages_count_by_distribution_and_version(tmp_path):
    import importlib.metadata

    from django_safemigrate.checksum import payload

    helpers = HELPERS.replace(
        "from ckpkg.limits import LIMIT\n", "from ckpkg.limits import LIMIT\nimport sqlparse\n"
    ).replace("return clamp(LIMIT)", "return clamp(LIMIT), sqlparse.format('select 1')")
    migration = load({**FILES, "helpers": helpers}, tmp_path)
    text = payload(migration)
    assert f"sqlparse=={importlib.metadata.version('sqlparse')}" in text
    # Django and the standard library by qualified name alone.
    assert "Django==" not in text
    assert module_origin("json.decoder") is Origin.FRAMEWORK
    assert module_origin("django.db.models") is Origin.FRAMEWORK
    assert module_origin("sqlparse") is Origin.INSTALLED
    assert module_origin("ckpkg.helpers") is Origin.PROJECT


# -- checksums recorded by version 1 -----------------------------------------------------


def test_a_version_1_checksum_of_the_same_file_is_recognised(tmp_path):
    migration = load(FILES, tmp_path)
    current = migration_checksum(migration)
    old = checksum_v1.migration_checksum(migration)
    assert compare(current, migration, current) is Comparison.SAME
    assert compare(old, migration, current) is Comparison.UPGRADED
    assert compare("sha256:" + "0" * 64, migration, current) is Comparison.EDITED
    assert compare("sha256:v2:" + "0" * 64, migration, current) is Comparison.EDITED
    assert compare("garbage", migration, current) is Comparison.EDITED


def test_a_version_1_checksum_taken_after_contenttypes_inserted_operations(tmp_path):
    from django.contrib.contenttypes.management import inject_rename_contenttypes_operations

    source = BASE.replace(
        "    operations = [\n",
        '    operations = [\n        migrations.RenameModel("Thing", "Item"),\n',
    )
    applied = load({**FILES, "migration": source}, tmp_path)
    inject_rename_contenttypes_operations(plan=[(applied, False)])
    recorded = checksum_v1.migration_checksum(applied)  # what the previous release recorded
    fresh = load({**FILES, "migration": source}, tmp_path)
    assert compare(recorded, fresh, migration_checksum(fresh)) is Comparison.UPGRADED
    edited = load({**FILES, "migration": source.replace('"Thing"', '"Thingy"')}, tmp_path)
    assert compare(recorded, edited, migration_checksum(edited)) is Comparison.EDITED


def test_a_version_1_checksum_holding_a_memory_address_cannot_be_verified(tmp_path):
    applied = load({**FILES, "migration": AWKWARD}, tmp_path)
    recorded = checksum_v1.migration_checksum(applied)
    later = load({**FILES, "migration": AWKWARD}, tmp_path)  # another object, another address
    assert checksum_v1.migration_checksum(later) != recorded
    assert compare(recorded, later, migration_checksum(later)) is Comparison.UNVERIFIABLE
