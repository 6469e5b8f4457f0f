"""Write a Django project with a long, realistic migration history, for benchmarks.

The project has N migrations spread over about ten apps (so each app has about N/10). Each
migration holds a realistic mix of operations, drawn from a seeded random generator:

* ``CreateModel`` with several fields (foreign keys to models of the same app, of other apps
  and to ``settings.AUTH_USER_MODEL`` among them);
* ``AddField``: nullable, with a default, or a nullable foreign key to another app's model
  (so the graph has cross-app dependencies, as real projects do);
* ``AddIndex``, ``AddConstraint`` (check and unique constraints);
* ``AlterField`` (wider ``varchar``, ``integer`` to ``bigint``, dropping ``NOT NULL``);
* ``RemoveField`` and ``RenameField`` now and then;
* ``RunPython`` with a small function defined in the migration, and ``RunSQL`` (comments,
  guarded updates, a PL/pgSQL function with a dollar-quoted body).

Each app's ``models.py`` is the final state of its migrations, so ``makemigrations --check``
finds nothing to do. The same seed always writes the same project, and the history of
``N + k`` migrations starts with the history of ``N``: :func:`add_migrations` uses that to
add migrations to a committed project, the way a pull request does.

    python bench/generate_project.py /tmp/proj --migrations 1000 --seed 1 --git
    python bench/generate_project.py /tmp/proj --migrations 1000 --seed 1 --add 3

The project's settings read ``DATABASE_URL`` (via dj-database-url) and install
contenttypes, auth, django_safemigrate, django_migration_linter when it is importable, and
the generated apps. Run its ``manage.py`` from the project directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

APP_NAMES = (
    "accounts",
    "catalog",
    "orders",
    "billing",
    "shipping",
    "inventory",
    "reviews",
    "support",
    "analytics",
    "marketing",
)

MODEL_NOUNS = (
    "Customer", "Product", "Order", "Invoice", "Payment", "Shipment", "Warehouse", "Supplier",
    "Category", "Coupon", "Review", "Ticket", "Campaign", "Event", "Address", "Profile",
    "Basket", "Refund", "Carrier", "Parcel", "Stock", "Batch", "Discount", "Voucher", "Agent",
    "Report", "Metric", "Segment", "Lead", "Contract", "Plan", "Subscription", "Tax", "Region",
    "Store", "Brand", "Tag", "Comment", "Message", "Notice",
)  # fmt: skip

FIELD_WORDS = (
    "title", "status", "amount", "notes", "code", "quantity", "priority", "score", "label",
    "reference", "email", "phone", "weight", "price", "total", "description", "slug", "rank",
    "source", "channel", "country", "city", "currency", "rating", "level", "kind", "version",
    "budget", "margin", "duration", "comment", "position", "external_id", "region", "stage",
)  # fmt: skip

#: Model fields as Python source: the Django class and whether it can be indexed.
FIELD_CLASSES = {
    "char": "CharField",
    "text": "TextField",
    "int": "IntegerField",
    "bigint": "BigIntegerField",
    "bool": "BooleanField",
    "decimal": "DecimalField",
    "datetime": "DateTimeField",
    "date": "DateField",
    "json": "JSONField",
    "fk": "ForeignKey",
}
INDEXABLE = {"char", "int", "bigint", "bool", "decimal", "datetime", "date", "fk"}
NUMERIC = {"int", "bigint", "decimal"}
USER_MODEL = "settings.AUTH_USER_MODEL"

#: Operations of a migration after the first one of an app, with their weights.
OPERATION_WEIGHTS = {
    "create_model": 10,
    "add_field_null": 14,
    "add_field_default": 10,
    "add_foreign_key": 10,
    "add_index": 8,
    "alter_field": 10,
    "remove_field": 5,
    "rename_field": 5,
    "add_constraint": 6,
    "run_python": 6,
    "run_sql": 6,
}


@dataclasses.dataclass
class FieldSpec:
    name: str
    kind: str
    null: bool = False
    default: str | None = None  # Python source
    max_length: int | None = None
    target: str | None = None  # "app.Model" or USER_MODEL, for foreign keys
    on_delete: str = "CASCADE"
    related_name: str | None = None
    auto_now_add: bool = False

    @property
    def column(self) -> str:
        return f"{self.name}_id" if self.kind == "fk" else self.name

    def source(self) -> str:
        """``models.X(...)``, the same in a migration and in ``models.py``."""
        args: list[str] = []
        if self.kind == "fk":
            target = USER_MODEL if self.target == USER_MODEL else json.dumps(self.target)
            args += [target, f"on_delete=models.{self.on_delete}"]
            if self.related_name:
                args.append(f"related_name={json.dumps(self.related_name)}")
        if self.max_length is not None:
            args.append(f"max_length={self.max_length}")
        if self.kind == "decimal":
            args += ["max_digits=12", "decimal_places=2"]
        if self.auto_now_add:
            args.append("auto_now_add=True")
        if self.null:
            args += ["blank=True", "null=True"]
        if self.default is not None:
            args.append(f"default={self.default}")
        return f"models.{FIELD_CLASSES[self.kind]}({', '.join(args)})"


@dataclasses.dataclass
class ModelSpec:
    app: str
    name: str
    fields: dict[str, FieldSpec]
    #: ``(name, fields)`` of each ``models.Index``.
    indexes: list[tuple[str, list[str]]] = dataclasses.field(default_factory=list)
    #: Python source of each constraint.
    constraints: list[str] = dataclasses.field(default_factory=list)
    #: Fields named by an index or constraint: left alone by later operations.
    pinned: set[str] = dataclasses.field(default_factory=set)

    @property
    def table(self) -> str:
        return f"{self.app}_{self.name.lower()}"

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"


@dataclasses.dataclass
class MigrationSpec:
    app: str
    number: int
    name: str
    dependencies: list[str]  # Python source of each dependency
    operations: list[str]  # Python source of each operation
    functions: list[str]  # module-level functions (RunPython code)

    @property
    def filename(self) -> str:
        return f"{self.name}.py"

    def source(self) -> str:
        uses_settings = any("settings." in text for text in self.dependencies + self.operations)
        lines = ["# Generated by bench/generate_project.py", ""]
        if uses_settings:
            lines.append("from django.conf import settings")
        lines += ["from django.db import migrations, models", "", ""]
        for function in self.functions:
            lines += [function, "", ""]
        lines.append("class Migration(migrations.Migration):")
        if self.number == 1:
            lines.append("    initial = True")
            lines.append("")
        lines.append("    dependencies = [")
        lines += [f"        {dependency}," for dependency in self.dependencies]
        lines += ["    ]", "", "    operations = ["]
        for operation in self.operations:
            lines += [_indent(operation, 8) + ","]
        lines += ["    ]", ""]
        return "\n".join(lines)


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


class Generator:
    """Draws the history one migration at a time, tracking every model's current state."""

    def __init__(self, seed: int, apps: Sequence[str], *, check_keyword: str) -> None:
        self.rng = random.Random(seed)
        self.apps = list(apps)
        self.check_keyword = check_keyword  # "condition" (Django 5.1+) or "check"
        self.models: dict[str, dict[str, ModelSpec]] = {app: {} for app in self.apps}
        self.latest: dict[str, str] = {}  # app -> name of its latest migration
        self.count: dict[str, int] = dict.fromkeys(self.apps, 0)
        self.used_model_names: set[str] = set()
        self.serial = 0  # for index, constraint and function names
        self.slug = ""  # describes the last operation drawn; names the migration
        self.dependencies: set[str] = set()  # apps the migration being drawn depends on
        self.functions: list[str] = []  # RunPython code of the migration being drawn

    # -- one migration ------------------------------------------------------------------------

    def step(self, index: int) -> MigrationSpec:
        app = self.apps[index % len(self.apps)]
        self.count[app] += 1
        number = self.count[app]
        self.dependencies = set()
        self.functions = []
        operations: list[str] = []
        if number == 1:
            operations = [self.create_model(app) for _ in range(self.rng.choice((2, 2, 3)))]
            slug = "initial"
        else:
            count = self.rng.choices((1, 2, 3, 4), weights=(50, 30, 15, 5))[0]
            kinds = list(OPERATION_WEIGHTS)
            weights = list(OPERATION_WEIGHTS.values())
            while len(operations) < count:
                kind = self.rng.choices(kinds, weights=weights)[0]
                operation = getattr(self, kind)(app)
                if operation is not None:
                    operations.append(operation)
            slug = self.slug
        name = f"{number:04d}_{slug}"
        previous = self.latest.get(app)
        dependencies = sorted(self.dependencies - {app})
        sources = [f"({json.dumps(app)}, {json.dumps(previous)})"] if previous else []
        for other in dependencies:
            if other == "auth":
                sources.append("migrations.swappable_dependency(settings.AUTH_USER_MODEL)")
            else:
                sources.append(f"({json.dumps(other)}, {json.dumps(self.latest[other])})")
        self.latest[app] = name
        return MigrationSpec(app, number, name, sources, operations, self.functions)

    # -- helpers ------------------------------------------------------------------------------

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def pick_model(self, app: str) -> ModelSpec | None:
        models = list(self.models[app].values())
        return self.rng.choice(models) if models else None

    def other_app_model(self, app: str) -> ModelSpec | None:
        candidates = [m for other in self.apps if other != app for m in self.models[other].values()]
        return self.rng.choice(candidates) if candidates else None

    def field_name(self, model: ModelSpec | None, taken: set[str] | None = None) -> str:
        taken = set(taken or ()) | (set(model.fields) if model else set())
        word = self.rng.choice(FIELD_WORDS)
        name, n = word, 2
        while name in taken or name == "id":
            name, n = f"{word}_{n}", n + 1
        return name

    def fk_name(self, model: ModelSpec, base: str) -> str:
        """A foreign key is named after what it points to: ``customer``, ``customer_2`` …"""
        name, n = base, 2
        while name in model.fields or f"{name}_id" in model.fields:
            name, n = f"{base}_{n}", n + 1
        return name

    def scalar_field(self, name: str, *, nullable: bool, default: bool) -> FieldSpec:
        """A plain column: ``nullable`` ones allow NULL; ``default`` ones have a default."""
        kind = self.rng.choice(("char", "char", "int", "bool", "decimal", "datetime", "text"))
        field = FieldSpec(name, kind)
        if kind == "char":
            field.max_length = self.rng.choice((32, 64, 100, 255))
        if kind == "bool":
            field.default = "False"  # a nullable boolean is rarely what anyone wants
        elif nullable or kind in {"decimal", "datetime"}:
            field.null = True
        elif default:
            field.default = {"char": '""', "text": '""', "int": "0"}[kind]
        return field

    def foreign_key(self, model_name: str, name: str, target: str) -> FieldSpec:
        return FieldSpec(
            name,
            "fk",
            null=True,
            target=target,
            on_delete="SET_NULL",
            related_name=f"{model_name.lower()}_{name}_set",
        )

    def refer(self, target: ModelSpec) -> str:
        """Record the dependency on ``target``'s app; return its label."""
        self.dependencies.add(target.app)
        return target.label

    # -- operations ---------------------------------------------------------------------------

    def create_model(self, app: str) -> str:
        noun = self.rng.choice(MODEL_NOUNS)
        name, n = noun, 2
        while name in self.used_model_names:
            name, n = f"{noun}{n}", n + 1
        self.used_model_names.add(name)
        model = ModelSpec(app, name, {})
        for _ in range(self.rng.randint(3, 6)):
            fname = self.field_name(model)
            nullable = self.rng.random() < 0.3
            model.fields[fname] = self.scalar_field(fname, nullable=nullable, default=False)
        if self.rng.random() < 0.3:
            model.fields["created_at"] = FieldSpec("created_at", "datetime", auto_now_add=True)
        # A foreign key to another app's model, to one of this app's, or to the user model.
        roll = self.rng.random()
        target: ModelSpec | None = None
        if roll < 0.4:
            target = self.other_app_model(app)
        elif roll < 0.7:
            target = self.pick_model(app)
        if target is not None:
            fname = self.fk_name(model, target.name.lower())
            model.fields[fname] = self.foreign_key(name, fname, self.refer(target))
        elif roll < 0.8:
            self.dependencies.add("auth")
            fname = self.fk_name(model, "owner")
            model.fields[fname] = self.foreign_key(name, fname, USER_MODEL)
        self.models[app][name] = model
        self.slug = name.lower()
        fields = [
            '("id", models.BigAutoField(auto_created=True, primary_key=True, '
            'serialize=False, verbose_name="ID"))'
        ]
        fields += [f"({json.dumps(f.name)}, {f.source()})" for f in model.fields.values()]
        body = "".join(f"        {f},\n" for f in fields)
        return (
            f"migrations.CreateModel(\n    name={json.dumps(name)},\n    fields=[\n{body}    ],\n)"
        )

    def _add_field(self, model: ModelSpec, field: FieldSpec) -> str:
        model.fields[field.name] = field
        self.slug = f"{model.name.lower()}_{field.name}"
        return (
            f"migrations.AddField(\n    model_name={json.dumps(model.name.lower())},\n"
            f"    name={json.dumps(field.name)},\n    field={field.source()},\n)"
        )

    def add_field_null(self, app: str) -> str | None:
        model = self.pick_model(app)
        if model is None:
            return None
        field = self.scalar_field(self.field_name(model), nullable=True, default=False)
        return self._add_field(model, field)

    def add_field_default(self, app: str) -> str | None:
        model = self.pick_model(app)
        if model is None:
            return None
        name = self.field_name(model)
        kind = self.rng.choice(("int", "bool", "char", "json"))
        field = FieldSpec(name, kind, default={"int": "0", "bool": "False", "char": '""'}.get(kind))
        if kind == "char":
            field.max_length = self.rng.choice((20, 50))
        if kind == "json":
            field.default = "dict"
        return self._add_field(model, field)

    def add_foreign_key(self, app: str) -> str | None:
        model = self.pick_model(app)
        target = self.other_app_model(app)
        if model is None or target is None:
            return None
        name = self.fk_name(model, target.name.lower())
        return self._add_field(model, self.foreign_key(model.name, name, self.refer(target)))

    def add_index(self, app: str) -> str | None:
        model = self.pick_model(app)
        if model is None:
            return None
        candidates = sorted(n for n, f in model.fields.items() if f.kind in INDEXABLE)
        if not candidates:
            return None
        fields = self.rng.sample(candidates, min(len(candidates), self.rng.choice((1, 1, 2))))
        if any(existing == fields for _, existing in model.indexes):
            return None
        name = f"{app[:6]}_{fields[0][:10]}_{self.next_serial()}_idx"
        model.indexes.append((name, fields))
        model.pinned.update(fields)
        self.slug = name.removesuffix("_idx")
        return (
            f"migrations.AddIndex(\n    model_name={json.dumps(model.name.lower())},\n"
            f"    index={_index_source(name, fields)},\n)"
        )

    def add_constraint(self, app: str) -> str | None:
        model = self.pick_model(app)
        if model is None:
            return None
        numeric = sorted(n for n, f in model.fields.items() if f.kind in NUMERIC)
        plain = sorted(n for n, f in model.fields.items() if f.kind in {"char", "int", "bigint"})
        serial = self.next_serial()
        if numeric and self.rng.random() < 0.6:
            field = self.rng.choice(numeric)
            name = f"{model.name.lower()[:12]}_{field[:8]}_{serial}_gte0"
            source = (
                f"models.CheckConstraint({self.check_keyword}=models.Q(({field + '__gte'!r}, 0)), "
                f"name={json.dumps(name)})"
            )
            model.pinned.add(field)
        elif plain:
            fields = self.rng.sample(plain, min(len(plain), 2))
            name = f"{model.name.lower()[:12]}_{fields[0][:8]}_{serial}_uniq"
            source = (
                f"models.UniqueConstraint(fields={json.dumps(fields)}, name={json.dumps(name)})"
            )
            model.pinned.update(fields)
        else:
            return None
        model.constraints.append(source)
        self.slug = name
        return (
            f"migrations.AddConstraint(\n    model_name={json.dumps(model.name.lower())},\n"
            f"    constraint={source},\n)"
        )

    def _free_fields(self, model: ModelSpec) -> list[FieldSpec]:
        """Fields no index, constraint or other model depends on: safe to alter or drop."""
        return [
            f
            for n, f in sorted(model.fields.items())
            if f.kind != "fk" and n not in model.pinned and not f.auto_now_add
        ]

    def alter_field(self, app: str) -> str | None:
        model = self.pick_model(app)
        if model is None:
            return None
        choices = []
        for field in self._free_fields(model):
            if field.kind == "char" and (field.max_length or 0) < 1000:
                choices.append(("widen", field))
            if field.kind == "int":
                choices.append(("bigint", field))
            if not field.null and field.kind not in {"bool", "json"}:
                choices.append(("nullable", field))
        if not choices:
            return None
        how, field = self.rng.choice(choices)
        if how == "widen":
            field.max_length = (field.max_length or 0) * 2
        elif how == "bigint":
            field.kind = "bigint"
        else:
            field.null, field.default = True, None
        self.slug = f"alter_{model.name.lower()}_{field.name}"
        return (
            f"migrations.AlterField(\n    model_name={json.dumps(model.name.lower())},\n"
            f"    name={json.dumps(field.name)},\n    field={field.source()},\n)"
        )

    def remove_field(self, app: str) -> str | None:
        model = self.pick_model(app)
        if model is None or len(model.fields) < 4:
            return None
        free = self._free_fields(model)
        if not free:
            return None
        field = self.rng.choice(free)
        del model.fields[field.name]
        self.slug = f"remove_{model.name.lower()}_{field.name}"
        return (
            f"migrations.RemoveField(\n    model_name={json.dumps(model.name.lower())},\n"
            f"    name={json.dumps(field.name)},\n)"
        )

    def rename_field(self, app: str) -> str | None:
        model = self.pick_model(app)
        if model is None:
            return None
        free = self._free_fields(model)
        if not free:
            return None
        field = self.rng.choice(free)
        new_name = self.field_name(model)
        old_name = field.name
        del model.fields[old_name]
        field.name = new_name
        model.fields[new_name] = field
        self.slug = f"rename_{old_name}_{model.name.lower()}_{new_name}"
        return (
            f"migrations.RenameField(\n    model_name={json.dumps(model.name.lower())},\n"
            f"    old_name={json.dumps(old_name)},\n    new_name={json.dumps(new_name)},\n)"
        )

    def run_python(self, app: str) -> str | None:
        model = self.pick_model(app)
        if model is None:
            return None
        candidates = [f for f in model.fields.values() if f.kind in {"char", "int", "bool"}]
        if not candidates:
            return None
        field = self.rng.choice(candidates)
        value = {"char": '"unknown"', "int": "0", "bool": "True"}[field.kind]
        function = f"populate_{field.name}_{self.next_serial()}"
        self.functions.append(
            f"def {function}(apps, schema_editor):\n"
            f"    {model.name} = apps.get_model({json.dumps(app)}, {json.dumps(model.name)})\n"
            f"    for obj in {model.name}.objects.all().iterator():\n"
            f"        obj.{field.name} = {value}\n"
            f"        obj.save(update_fields=[{json.dumps(field.name)}])"
        )
        self.slug = function.rsplit("_", 1)[0]
        return f"migrations.RunPython({function}, migrations.RunPython.noop)"

    def run_sql(self, app: str) -> str | None:
        model = self.pick_model(app)
        if model is None:
            return None
        serial = self.next_serial()
        flavour = self.rng.choice(("comment", "update", "function"))
        if flavour == "comment":
            forward = f"COMMENT ON TABLE \"{model.table}\" IS 'Generated table {serial}';"
            backward = f'COMMENT ON TABLE "{model.table}" IS NULL;'
            self.slug = f"comment_{model.name.lower()}"
        elif flavour == "update":
            ints = [f for f in model.fields.values() if f.kind in {"int", "bigint"} and f.null]
            if not ints:
                return None
            column = self.rng.choice(ints).column
            forward = f'UPDATE "{model.table}" SET "{column}" = 0 WHERE "{column}" IS NULL;'
            backward = None
            self.slug = f"fill_{model.name.lower()}_{column}"
        else:
            function = f"{model.table}_touch_{serial}"
            forward = (
                f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$\n"
                "BEGIN\n    NEW := NEW;\n    RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;"
            )
            backward = f"DROP FUNCTION IF EXISTS {function}();"
            self.slug = f"function_{model.name.lower()}"
        reverse = json.dumps(backward) if backward else "migrations.RunSQL.noop"
        return (
            f"migrations.RunSQL(\n    sql={_python_string(forward)},\n    reverse_sql={reverse},\n)"
        )


def _python_string(text: str) -> str:
    if "\n" in text:
        return '"""\n' + text + '\n"""'
    return json.dumps(text)


def _index_source(name: str, fields: list[str]) -> str:
    return f"models.Index(fields={json.dumps(fields)}, name={json.dumps(name)})"


def _check_keyword() -> str:
    """``CheckConstraint(condition=...)`` from Django 5.1 on, ``check=`` before."""
    import django

    return "condition" if django.VERSION >= (5, 1) else "check"


@dataclasses.dataclass
class Project:
    migrations: list[MigrationSpec]
    models: dict[str, dict[str, ModelSpec]]
    apps: list[str]


def build(migrations: int, seed: int, apps: int = 10) -> Project:
    """The first ``migrations`` migrations of the history drawn from ``seed``."""
    if apps < 1 or migrations < apps:
        raise ValueError(f"Need at least one migration per app ({migrations} for {apps} apps).")
    names = [APP_NAMES[i] if i < len(APP_NAMES) else f"app{i:02d}" for i in range(apps)]
    generator = Generator(seed, names, check_keyword=_check_keyword())
    history = [generator.step(index) for index in range(migrations)]
    return Project(history, generator.models, names)


# -- files ------------------------------------------------------------------------------------

MANAGE_PY = """\
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

SETTINGS_PY = '''\
"""Settings of a project written by bench/generate_project.py."""

import importlib.util
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "generated-benchmark-project"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# DATABASE_URL from the environment; without it, Django's dummy backend (enough for
# makemigrations --check; checkmigrations needs the PostgreSQL backend even --offline).
DATABASES = {{
    "default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=0)
    if os.environ.get("DATABASE_URL")
    else {{}}
}}

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_safemigrate",
]
# django-migration-linter, when installed, for comparison (bench/speed.py).
if importlib.util.find_spec("django_migration_linter") is not None:
    INSTALLED_APPS.append("django_migration_linter")
INSTALLED_APPS += {apps!r}
'''


def models_source(models: dict[str, ModelSpec]) -> str:
    uses_settings = any(
        f.target == USER_MODEL for model in models.values() for f in model.fields.values()
    )
    lines = ["# Generated by bench/generate_project.py: the final state of the migrations.", ""]
    if uses_settings:
        lines.append("from django.conf import settings")
    lines += ["from django.db import models", ""]
    for model in models.values():
        lines += ["", f"class {model.name}(models.Model):"]
        lines += [f"    {f.name} = {f.source()}" for f in model.fields.values()]
        if model.indexes or model.constraints:
            lines += ["", "    class Meta:"]
            if model.indexes:
                lines.append("        indexes = [")
                lines += [f"            {_index_source(n, f)}," for n, f in model.indexes]
                lines.append("        ]")
            if model.constraints:
                lines.append("        constraints = [")
                lines += [f"            {c}," for c in model.constraints]
                lines.append("        ]")
        if not model.fields and not model.indexes and not model.constraints:
            lines.append("    pass")
        lines.append("")
    return "\n".join(lines)


def write_models(root: Path, project: Project) -> None:
    for app in project.apps:
        (root / app / "models.py").write_text(models_source(project.models[app]))


def generate_project(root: Path, migrations: int, seed: int = 1, apps: int = 10) -> Project:
    """Write the project with ``migrations`` migrations into ``root`` (emptied first)."""
    project = build(migrations, seed, apps)
    if root.exists():
        shutil.rmtree(root)
    (root / "project").mkdir(parents=True)
    (root / "manage.py").write_text(MANAGE_PY)
    (root / ".gitignore").write_text("__pycache__/\n*.pyc\n")
    (root / "project" / "__init__.py").write_text("")
    (root / "project" / "settings.py").write_text(SETTINGS_PY.format(apps=project.apps))
    for app in project.apps:
        (root / app / "migrations").mkdir(parents=True)
        (root / app / "__init__.py").write_text("")
        (root / app / "migrations" / "__init__.py").write_text("")
    for migration in project.migrations:
        path = root / migration.app / "migrations" / migration.filename
        path.write_text(migration.source())
    write_models(root, project)
    return project


def add_migrations(
    root: Path, migrations: int, extra: int, seed: int = 1, apps: int = 10
) -> list[Path]:
    """Add the next ``extra`` migrations of the same history to a project of ``migrations``."""
    project = build(migrations + extra, seed, apps)
    written = []
    for migration in project.migrations[migrations:]:
        path = root / migration.app / "migrations" / migration.filename
        path.write_text(migration.source())
        written.append(path)
    write_models(root, project)
    return written


def git_commit(root: Path, message: str) -> None:
    """Commit everything in ``root`` (a new repository if there is none yet)."""
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    if not (root / ".git").exists():
        subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], cwd=root, check=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/generate_project.py",
        description="Write a Django project with a long, realistic migration history.",
    )
    parser.add_argument("directory", type=Path, help="where to write it (emptied first)")
    parser.add_argument("--migrations", type=int, default=1000, help="how many (default 1000)")
    parser.add_argument("--apps", type=int, default=10, help="how many apps (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--git", action="store_true", help="git init and commit the project")
    parser.add_argument(
        "--add",
        type=int,
        metavar="K",
        help="do not rewrite: add the next K migrations to the project of --migrations",
    )
    args = parser.parse_args(argv)
    if args.add is not None:
        if args.add < 1:
            parser.error("--add needs at least one migration to add")
        for path in add_migrations(args.directory, args.migrations, args.add, args.seed, args.apps):
            print(path)
        return 0
    generate_project(args.directory, args.migrations, args.seed, args.apps)
    if args.git:
        git_commit(args.directory, f"{args.migrations} generated migrations (seed {args.seed})")
    print(f"Wrote {args.migrations} migrations in {args.apps} apps to {args.directory}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
