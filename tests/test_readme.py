"""The READMEs are part of the product: their commands run, and the names they give exist.

What counts as a command (README.md, "Tests"): every line of a fenced ``console`` block,
except that in a block whose lines start with ``$ `` only those lines are commands (the
others are output). A trailing backslash continues a command on the next line. A trailing
comment may say what to expect::

    # exit N                       the command exits N (without it: 0)
    # not run by the tests: WHY    the command is left out, for the reason given

Any other comment is only a comment. The commands of each README run in the order they are
written, from the repository's root, against the example site on a new database of the test
server; ``python``, ``python3`` and ``.venv/bin/python`` stand for this interpreter, and
``SAFEMIGRATE_EMBEDDED_PGDATA`` names a directory of this test's own, so a command that
stops the embedded server never touches a developer's. A command must be one program with
its arguments: a pipe, ``&&`` or a redirection needs the marker.

What the text around a command takes for granted is made true first, once, for the
options below (:data:`PRECONDITIONS`): ``--as NAME`` names an active user who may decide
on migrations; ``--accept-ledger-loss`` is for a ledger that lost records.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.conf import global_settings
from django.db.migrations.loader import MigrationLoader
from pglast import keywords

from django_safemigrate.analysis.registry import rules
from django_safemigrate.conf import _FIELDS, SettingsProblem, parse_settings
from django_safemigrate.enums import MigrationOutcome, RunOutcome
from django_safemigrate.exceptions import UsageError
from django_safemigrate.execution.runner import migration_override
from django_safemigrate.testing.postgres import stop_command
from tests.helpers import ROOT, command_env, connect, fresh_database

#: Nothing here depends on the Django version: run once, in CI's first pass.
pytestmark = pytest.mark.once

READMES = [ROOT / "README.md", ROOT / "example_site" / "README.md"]
SKIP_MARKER = "not run by the tests:"
PYTHONS = {"python", "python3", ".venv/bin/python"}
#: Shell syntax a command run without a shell cannot have.
SHELL_SYNTAX = {"&&", "||", "|", ";", ">", ">>", "<", "&", "2>", "2>&1"}
MIGRATION_COMMANDS = ("safemigrate", "migrate", "checkmigrations", "reviewmigration")


# -- reading the READMEs ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Command:
    path: Path
    line: int
    text: str
    #: The exit code the README states (0 unless ``# exit N``).
    expect: int
    #: Why the tests leave it out (``# not run by the tests: WHY``), or None.
    skip: str | None

    def __str__(self) -> str:
        return f"{shown(self.path)}:{self.line}: {self.text}"


def shown(path: Path) -> Path:
    """``path`` as a message shows it: relative to the repository's root when inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


@dataclasses.dataclass(frozen=True)
class Block:
    info: str
    line: int
    lines: list[str]


_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<info>[\w-]*)")


def fenced_blocks(text: str) -> Iterator[Block]:
    """The fenced code blocks of a Markdown text, their indentation removed."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if not opening:
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        start = index + 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            line = lines[index]
            body.append(line[indent:] if line[:indent].strip() == "" else line)
            index += 1
        index += 1  # the closing fence
        yield Block(opening["info"], start, body)


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^\s*(```+|~~~+).*?^\s*\1\s*$", "", text, flags=re.S | re.M)


def code_spans(text: str) -> list[str]:
    """Inline code (one or more backticks), line breaks inside a span read as spaces."""
    return [" ".join(m[2].split()) for m in re.finditer(r"(`+)(.+?)\1", prose(text), re.S)]


def split_comment(line: str) -> tuple[str, str | None]:
    """A shell line and its trailing comment: a ``#`` outside quotes that starts a word."""
    quote, escaped = None, False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), None


def commands_in(path: Path) -> list[Command]:
    """Every command of the ``console`` blocks of the Markdown file ``path``, in order."""
    found = []
    for block in fenced_blocks(path.read_text()):
        if block.info != "console":
            continue
        prompted = any(line.startswith("$ ") for line in block.lines)
        pending, first = "", 0
        for offset, raw in enumerate(block.lines):
            line = raw
            if not pending:
                if prompted:
                    if not line.startswith("$ "):
                        continue  # output
                    line = line[2:]
                if not line.strip():
                    continue
                first = block.line + offset
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            text, comment = split_comment(pending + line)
            pending = ""
            found.append(_command(path, first, text, comment))
    return found


def _command(path: Path, line: int, text: str, comment: str | None) -> Command:
    where = f"{shown(path)}:{line}"
    expect, skip = 0, None
    if comment is not None and comment.startswith("not run"):
        assert comment.startswith(SKIP_MARKER), (
            f"{where}: a command the tests leave out is marked '# {SKIP_MARKER} WHY', "
            f"not '# {comment}'."
        )
        skip = comment.removeprefix(SKIP_MARKER).strip()
        assert skip, f"{where}: '# {SKIP_MARKER}' must say why."
    elif comment is not None and (code := re.match(r"exit (\d+)\b", comment)):
        expect = int(code[1])
    return Command(path, line, " ".join(text.split()), expect, skip)


# -- running the commands --------------------------------------------------------------------


def argv_and_env(command: Command) -> tuple[list[str], dict[str, str]]:
    """The program and arguments of ``command``, and the variables it assigns first."""
    words = shlex.split(command.text)
    assigned = {}
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        assigned[name] = value
    syntax = SHELL_SYNTAX.intersection(words)
    assert not syntax, (
        f"{command}: {' '.join(sorted(syntax))} needs a shell; write the command as one program "
        f"with its arguments, or mark it '# {SKIP_MARKER} WHY'."
    )
    assert words, f"{command}: no program"
    assert words[0] in PYTHONS, (
        f"{command}: the README test runs Python commands only ({', '.join(sorted(PYTHONS))}); "
        f"mark this one '# {SKIP_MARKER} WHY' or write it with the venv's python."
    )
    return [sys.executable, *words[1:]], assigned


def create_reviewer(database: str, argv: list[str]) -> None:
    """``--as NAME``: an active user with the permission to decide on migrations."""
    name = argv[argv.index("--as") + 1]
    with connect(database) as conn:
        conn.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) "
            "VALUES ('!', false, %s, '', '', '', false, true, now()) "
            "ON CONFLICT (username) DO NOTHING",
            [name],
        )
        conn.execute(
            "INSERT INTO auth_user_user_permissions (user_id, permission_id) "
            "SELECT u.id, p.id FROM auth_user u, auth_permission p "
            "WHERE u.username = %s AND p.codename = 'decide_migration' ON CONFLICT DO NOTHING",
            [name],
        )


def lose_ledger_records(database: str, argv: list[str]) -> None:
    """``--accept-ledger-loss``: the ledger's rows deleted behind its triggers' back."""
    with connect(database) as conn:
        conn.execute("SET session_replication_role = replica")  # the triggers refuse it
        for table in ("steprecord", "migrationrecord", "run"):
            conn.execute(f"DELETE FROM django_safemigrate_{table}")


#: What the README's text around a command with this option takes for granted.
PRECONDITIONS: dict[str, Callable[[str, list[str]], None]] = {
    "--as": create_reviewer,
    "--accept-ledger-loss": lose_ledger_records,
}


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_commands_run_with_the_exit_code_the_readme_gives(
    readme: Path, tmp_path: Path
) -> None:
    commands = commands_in(readme)
    assert [c for c in commands if c.skip is None], f"{readme}: no command to run"
    with fresh_database("readme") as database:
        env = command_env(
            database,
            module="example_site.settings",
            extra={"SAFEMIGRATE_EMBEDDED_PGDATA": str(tmp_path / "example-pgdata")},
        )
        for command in commands:
            if command.skip is not None:
                continue
            argv, assigned = argv_and_env(command)
            for option, prepare in PRECONDITIONS.items():
                if option in argv:
                    prepare(database, argv)
            result = subprocess.run(
                argv,
                env={**env, **assigned},
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            output = result.stdout + result.stderr
            assert result.returncode == command.expect, (
                f"{command}\nexited {result.returncode}, the README says {command.expect}\n{output}"
            )
            assert "Traceback" not in output, f"{command}\n{output}"


def test_the_stop_command_is_the_one_the_embedded_server_announces() -> None:
    announced = shlex.split(stop_command())
    assert announced[0] == (sys.executable or "python")
    readme = [c.text for c in commands_in(ROOT / "README.md")]
    assert shlex.join([".venv/bin/python", *announced[1:]]) in readme


# -- the names the READMEs give --------------------------------------------------------------


def readme_texts() -> list[tuple[Path, str]]:
    return [(path, path.read_text()) for path in READMES]


def line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def test_every_migration_named_exists() -> None:
    disk = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    labels = {app for app, _ in disk}
    missing = []
    for path, text in readme_texts():
        pattern = r"(?<![\w/.-])(?:(?P<app>[a-z_][a-z0-9_]*)[. ])?(?P<name>\d{4}_[a-z0-9_]+)"
        for match in re.finditer(pattern, text):
            app, name = match["app"], match["name"]
            # "shop.0032_…" or "shop 0032_…": that app's; a name alone: any app's.
            known = {(app, name)} if app in labels else {(a, name) for a in labels}
            if not known & disk:
                where = f"{shown(path)}:{line_of(text, match.start())}"
                missing.append(f"{where}: {match[0]}")
    assert not missing, "migrations the README names but no app has:\n" + "\n".join(missing)


def test_every_app_label_named_exists() -> None:
    labels = {app for app, _ in MigrationLoader(None, ignore_no_migrations=True).disk_migrations}
    named: list[tuple[Path, str, str]] = []
    # A command: at the start of the code, or after manage.py (not in a comment).
    commands = "|".join(MIGRATION_COMMANDS)
    words = rf"(?:^\s*|manage\.py\s+)(?:{commands})\s+([a-z_][a-z0-9_]*)(?![\w.=-])"
    for path, text in readme_texts():
        code = [*code_spans(text)]
        for block in fenced_blocks(text):
            code.extend(block.lines)
        for snippet in code:
            for match in re.finditer(r"(?<![\w-])([a-z_][a-z0-9_]*)\.\d{4}_", snippet):
                named.append((path, snippet, match[1]))
            for match in re.finditer(words, snippet.split("#")[0]):
                named.append((path, snippet, match[1]))
    assert named, "the app-label patterns no longer find anything"
    unknown = [f"{shown(p)}: {label} in `{s}`" for p, s, label in named if label not in labels]
    assert not unknown, "app labels the README names but the example site lacks:\n" + "\n".join(
        unknown
    )


def _project_source() -> str:
    """The project's code, and that of the backend it documents working with
    (django-pg-zero-downtime-migrations, whose settings the README names)."""
    import django_zero_downtime_migrations

    files = [ROOT / "manage.py"]
    for package in ("django_safemigrate", "example_site", "tests"):
        files.extend((ROOT / package).rglob("*.py"))
    files.extend(Path(django_zero_downtime_migrations.__path__[0]).rglob("*.py"))
    return "\n".join(f.read_text() for f in files if f.name != "test_readme.py")


def _sql_keywords() -> set[str]:
    groups = ("COL_NAME_KEYWORDS", "RESERVED_KEYWORDS", "TYPE_FUNC_NAME_KEYWORDS")
    found = set(keywords.UNRESERVED_KEYWORDS)
    for group in groups:
        found |= getattr(keywords, group)
    return {word.upper() for word in found}


def test_every_setting_key_named_exists() -> None:
    """``SAFEMIGRATE['KEY']`` and the keys of ``SAFEMIGRATE = {...}`` are settings keys; any
    other name in capitals in code font is a settings key, a Django setting, an SQL keyword,
    or a name the project's code uses (an environment variable it reads)."""
    source = _project_source()
    sql = _sql_keywords()
    problems = []
    for path, text in readme_texts():
        for match in re.finditer(r"SAFEMIGRATE\[\s*[\"'](\w+)[\"']\s*\]", text):
            if match[1] not in _FIELDS:
                problems.append(f"{shown(path)}: {match[0]} is no settings key")
        for _, value in _settings_dicts(text):
            problems.extend(
                f"{shown(path)}: SAFEMIGRATE = {{...}} has the unknown key {key!r}"
                for key in value
                if key not in _FIELDS
            )
        for span in code_spans(text):
            if not re.fullmatch(r"[A-Z][A-Z0-9_]+", span) or re.fullmatch(r"[EW]\d{3}", span):
                continue
            known = (
                span in _FIELDS
                or span == "SAFEMIGRATE"
                or hasattr(global_settings, span)
                or span in sql
                or re.search(rf"(?<![A-Za-z0-9_]){span}(?![A-Za-z0-9_])", source)
            )
            if not known:
                problems.append(f"{shown(path)}: `{span}` is not a name the code knows")
    assert not problems, "\n".join(problems)


def _python_snippets(text: str) -> list[str]:
    snippets = ["\n".join(b.lines) for b in fenced_blocks(text) if b.info == "python"]
    return snippets + [s for s in code_spans(text) if "=" in s]


def _statements(snippet: str) -> Iterator[ast.AST]:
    """The nodes of a snippet's syntax tree; of each line that parses alone, if it does not
    (an example with ``...`` standing for what it leaves out)."""
    try:
        trees = [ast.parse(snippet)]
    except SyntaxError:
        trees = []
        for line in snippet.splitlines():
            try:
                trees.append(ast.parse(line.strip()))
            except SyntaxError:
                continue
    for tree in trees:
        yield from ast.walk(tree)


def _settings_dicts(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Every ``SAFEMIGRATE = {...}`` of the text's Python, evaluated."""
    found = []
    for snippet in _python_snippets(text):
        for node in _statements(snippet):
            if (
                isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["SAFEMIGRATE"]
                and isinstance(node.value, ast.Dict)
            ):
                found.append((snippet, ast.literal_eval(node.value)))
    return found


def _timeouts_overrides(text: str) -> list[Any]:
    """Every ``safemigrate_timeouts = ...`` of the text's Python, evaluated."""
    found = []
    for snippet in _python_snippets(text):
        for node in _statements(snippet):
            targets = [getattr(t, "id", None) for t in getattr(node, "targets", ())]
            if isinstance(node, ast.Assign) and targets == ["safemigrate_timeouts"]:
                expression = ast.Expression(node.value)
                found.append(eval(compile(expression, "<README>", "eval"), {"__builtins__": {}}))
    return found


def _database_aliases(snippet: str) -> set[str]:
    """The aliases a ``DATABASES = {...}`` example defines (written with ``...``, so read as
    text): the keys of its entries ``"alias": {``."""
    if "DATABASES = {" not in snippet:
        return set()
    return set(re.findall(r"^\s*[\"'](\w+)[\"']\s*:\s*\{", snippet, re.M))


def test_settings_examples_are_valid_settings() -> None:
    examples = []
    for _, text in readme_texts():
        for snippet, value in _settings_dicts(text):
            examples.append((value, {"default", *_database_aliases(snippet)}))
    assert len(examples) >= 3, "the README's SAFEMIGRATE examples are no longer found"
    for value, aliases in examples:
        try:
            parse_settings(value, {alias: {} for alias in aliases})
        except SettingsProblem as exc:  # pragma: no cover - the failure message
            pytest.fail(f"SAFEMIGRATE = {value!r} is invalid: {exc.message}")
    overrides = [value for _, text in readme_texts() for value in _timeouts_overrides(text)]
    assert overrides, "the README's safemigrate_timeouts example is no longer found"
    for value in overrides:
        migration = SimpleNamespace(app_label="shop", name="0001_x", safemigrate_timeouts=value)
        try:
            migration_override(migration)  # type: ignore[arg-type]
        except UsageError as exc:  # pragma: no cover - the failure message
            pytest.fail(f"safemigrate_timeouts = {value!r} is invalid: {exc}")


def _defined_check_ids() -> set[str]:
    found = set()
    for module in ("conf.py", "checks.py"):
        source = (ROOT / "django_safemigrate" / module).read_text()
        found |= set(re.findall(r"safemigrate\.([EW]\d{3})", source))
    return found


def test_every_check_id_named_exists_and_every_one_is_documented() -> None:
    defined = _defined_check_ids()
    assert defined, "no check ids found in conf.py and checks.py"
    text = (ROOT / "README.md").read_text()
    named = set(re.findall(r"safemigrate\.([EW]\d{3})\b", text))
    named |= {s for s in code_spans(text) if re.fullmatch(r"[EW]\d{3}", s)}
    assert not named - defined, f"check ids the README names that do not exist: {named - defined}"
    assert not defined - named, f"check ids the README does not document: {defined - named}"


def test_every_rule_code_named_exists() -> None:
    codes = set(rules())
    for path, text in readme_texts():
        named = set(re.findall(r"\bSM\d{3}\b", text))
        assert not named - codes, f"{shown(path)}: unknown rule codes {named - codes}"


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(heading + "\n")
    ends = re.compile(rf"^#{{1,{level}}} ", re.M)
    following = ends.search(text, start + len(heading) + 1)
    return text[start : following.start() if following else len(text)]


def test_the_ledger_section_documents_every_outcome_and_counts_the_tables() -> None:
    ledger = _section((ROOT / "README.md").read_text(), "### The ledger")
    for outcome in (*RunOutcome, *MigrationOutcome):
        assert f"`{outcome.value}`" in ledger, f"outcome {outcome.value!r} is not documented"
    models = list(apps.get_app_config("django_safemigrate").get_models())
    tables = {model._meta.db_table for model in models}
    assert all(f"`{t}`" in ledger or f"`…{t.removeprefix('django_safemigrate')}`" in ledger
               for t in tables), tables  # fmt: skip
    numbers = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    count = re.search(r"create (\w+) tables", ledger)
    assert count is not None, "the ledger section no longer says how many tables there are"
    assert count[1] == numbers[len(tables)], f"the app creates {len(tables)} tables"


# -- the convention itself -------------------------------------------------------------------


def test_the_command_convention(tmp_path: Path) -> None:
    sample = tmp_path / "SAMPLE.md"
    sample.write_text(
        "Text with `python manage.py check`.\n\n"
        "```console\n"
        "python manage.py safemigrate --plan  # exit 3\n"
        ".venv/bin/python manage.py reviewmigration shop 0032_remove_product_legacy_code \\\n"
        '    --approve --note \'not # a comment\' --as "alice \\"#1\\""  # exit 0\n'
        "pip install something  # not run by the tests: installs from PyPI\n"
        "python manage.py safemigrate --phase pre    # before rolling out the new code\n"
        "```\n\n"
        "- a list item:\n\n"
        "  ```console\n"
        "  $ python manage.py migrate\n"
        "  Operations to perform:\n"
        "  $ python manage.py showmigrations  # exit 1\n"
        "  ```\n\n"
        "```\npython manage.py usage [synopsis]\n```\n"
    )
    commands = commands_in(sample)
    found = [(c.line, c.text, c.expect, c.skip) for c in commands]
    assert found == [
        (4, "python manage.py safemigrate --plan", 3, None),
        (
            5,
            ".venv/bin/python manage.py reviewmigration shop 0032_remove_product_legacy_code "
            '--approve --note \'not # a comment\' --as "alice \\"#1\\""',
            0,
            None,
        ),
        (7, "pip install something", 0, "installs from PyPI"),
        (8, "python manage.py safemigrate --phase pre", 0, None),
        (14, "python manage.py migrate", 0, None),
        (16, "python manage.py showmigrations", 1, None),
    ]
    argv, assigned = argv_and_env(commands[1])
    assert argv[0] == sys.executable
    assert argv[-3:] == ["not # a comment", "--as", 'alice "#1"']
    assert assigned == {}

    sample.write_text("```console\nA=1 python3 -c pass && echo done\n```\n")
    (chained,) = commands_in(sample)
    with pytest.raises(AssertionError, match="&& needs a shell"):
        argv_and_env(chained)
    sample.write_text("```console\npip install x  # not run: no reason format\n```\n")
    with pytest.raises(AssertionError, match="is marked '# not run by the tests: WHY'"):
        commands_in(sample)
