"""Checksums follow what a migration does, not how its file is written."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from django_safemigrate.checksum import migration_checksum
from tests.helpers import ROOT

_counter = itertools.count()

BASE = """
from django.db import migrations, models


def forwards(apps, schema_editor):
    Item = apps.get_model("shop", "Item")
    Item.objects.filter(price__isnull=True).update(price=0)


class Migration(migrations.Migration):
    atomic = True
    dependencies = [("shop", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [
        migrations.AddField("item", "price", models.IntegerField(null=True, default=None)),
        migrations.RunSQL(
            "UPDATE shop_item SET price = 1 WHERE price IS NULL", migrations.RunSQL.noop
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
"""


def checksum_of(source: str, tmp_path: Path) -> str:
    """Import ``source`` as a migration module (under one fixed module name) and hash it."""
    name = "shop_migration_under_test"
    path = tmp_path / f"m{next(_counter)}" / f"{name}.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        return migration_checksum(module.Migration("0002_item_price", "shop"))
    finally:
        del sys.modules[name]


SAME_MEANING = {
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
}

NEW_MEANING = {
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
}


def test_checksum_shape(tmp_path):
    checksum = checksum_of(BASE, tmp_path)
    assert checksum.startswith("sha256:")
    assert len(checksum) == len("sha256:") + 64


@pytest.mark.parametrize("change", sorted(SAME_MEANING))
def test_same_meaning_same_checksum(change, tmp_path):
    assert SAME_MEANING[change] != BASE
    assert checksum_of(SAME_MEANING[change], tmp_path) == checksum_of(BASE, tmp_path)


@pytest.mark.parametrize("change", sorted(NEW_MEANING))
def test_new_meaning_new_checksum(change, tmp_path):
    assert NEW_MEANING[change] != BASE
    assert checksum_of(NEW_MEANING[change], tmp_path) != checksum_of(BASE, tmp_path)


def test_unparsable_sql_still_counts(tmp_path):
    broken = BASE.replace('"UPDATE shop_item SET price = 1 WHERE price IS NULL"', '"UPDATE ((("')
    other = BASE.replace('"UPDATE shop_item SET price = 1 WHERE price IS NULL"', '"UPDATE ((( x"')
    assert checksum_of(broken, tmp_path) != checksum_of(other, tmp_path)


def test_checksum_is_the_same_in_another_interpreter(tmp_path):
    """Hash seeds, set ordering and object addresses do not leak into the checksum."""
    script = (
        "import django; django.setup();"
        "from django.db.migrations.loader import MigrationLoader;"
        "from django_safemigrate.checksum import migration_checksum;"
        "l = MigrationLoader(None);"
        "print(sorted((k, migration_checksum(m)) for k, m in l.disk_migrations.items()))"
    )
    outputs = set()
    for seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={
                **__import__("os").environ,
                "PYTHONHASHSEED": seed,
                "DJANGO_SETTINGS_MODULE": "example_site.settings",
                "PYTHONPATH": str(ROOT),
            },
        )
        outputs.add(proc.stdout)
    assert len(outputs) == 1
    assert "('shop', '0011_backfill_customer_email_normalized')" in outputs.pop()
