"""The adversarial suite, files: what a task reads — invoke.yaml, the fly toml, .env, .env.fly, credential
files, the state directory and its locks — wrong in every way the hostile-input run found.

Generated: every nixfly setting in invoke.yaml with values of the wrong type or out of range, and every fly
toml field nixfly reads with values of the wrong type; each case goes to a task of its own in turn. Then the
hand-written cases: unreadable, directory, FIFO and non-UTF-8 files, symlinks, tracked credentials, damaged
locks, a state directory that is a file, and `inv clean --state` under a deploy or a running release. Every
case asserts the exit code, no traceback, one ``error:`` line naming the problem, and nothing changed
(``helpers/adversarial.py``).
"""

# ruff: noqa: E501 (the case tables read best one case per line)

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from itertools import cycle
from pathlib import Path
from typing import Any

import pytest
from helpers.adversarial import (
    FAST,
    Arrange,
    Case,
    arrange_edit,
    arrange_file,
    check,
    git,
    parametrize,
    replaced,
    world,
)
from helpers.project import Project, base_yaml
from invoke.util import yaml

from nixfly.config import HEALTH_KEYS, MODE_KEYS, TOP_KEYS

# Tasks a config problem is tried on, in turn (each reads the settings before doing anything).
SETTINGS_TASKS = [
    ("deploy", *FAST),
    ("bundle",),
    ("secrets",),
    ("doctor",),
    ("status",),
    ("logs", "--timeout", "1"),
    ("releases",),
    ("rollback",),
    ("stop",),
    ("apps.create",),
    ("volumes.create",),
    ("lock.status",),
    ("lock.release",),
    ("image.push", "--dry-run"),
    ("image.inspect",),
    ("build", "--dry-run"),
    ("cache.push", "--name", "c"),
    ("update", "--dry-run"),
    ("dev", "--dry-run"),
    ("deploy", *FAST, "--target", "local"),
]

# --- invoke.yaml ---------------------------------------------------------------------------------------------
NIXFLY_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"env_file": 5}, "nixfly.env_file: must be text, not int"),
    (
        {"groups": {"web": ["ssh://deploy@web1", "ssh://deploy@web1"]}},
        "nixfly.groups.web: ssh://deploy@web1 is listed twice",
    ),
    ({"groups": {"web": ["web1"]}}, "nixfly.groups.web: 'web1' is not an ssh:// URL"),
    ({"groups": {"local": ["ssh://web1"]}}, "nixfly.groups.local: 'local' is a target of its own"),
    ({"groups": ["ssh://web1"]}, "nixfly.groups: must be a mapping"),
    ({"env_file": ""}, "nixfly.env_file: '' is not valid"),
    ({"env_file": "a\nb"}, "nixfly.env_file: 'a\\nb' is not valid"),
    ({"dotenv": []}, "nixfly.dotenv: must be text, not list"),
    ({"state_dir": 5}, "nixfly.state_dir: must be text"),
    ({"state_dir": "."}, "nixfly.state_dir: . is the checkout or holds it"),
    ({"state_dir": ".."}, "is the checkout or holds it"),
    ({"state_dir": "/"}, "is the checkout or holds it"),
    ({"org": "Bad Org"}, "nixfly.org: 'Bad Org' is not valid"),
    ({"org": 5}, "nixfly.org: must be text"),
    ({"builder": "docker"}, "nixfly.builder: unknown value 'docker'"),
    ({"builder": None}, "nixfly.builder: must be text, not NoneType"),
    ({"registry": ""}, "nixfly.registry: '' is not valid"),
    ({"registry": "reg istry"}, "nixfly.registry: 'reg istry' is not valid"),
    ({"strategy": False}, "nixfly.strategy: must be text, not bool"),
    ({"strategy": "yolo"}, "nixfly.strategy: unknown value 'yolo'"),
    ({"flyctl": ""}, "nixfly.flyctl: '' is not valid"),
    ({"flyctl": ["flyctl"]}, "nixfly.flyctl: must be text"),
    ({"stratgy": "rolling"}, "nixfly.stratgy: is not a setting nixfly knows — did you mean 'strategy'?"),
    ({"health": 5}, "nixfly.health: must be a mapping"),
    ({"health": {"timeout": "abc"}}, "nixfly.health.timeout: must be a number, not 'abc'"),
    ({"health": {"timeout": 0}}, "nixfly.health.timeout: 0 is out of range"),
    ({"health": {"timeout": -1}}, "nixfly.health.timeout: -1 is out of range"),
    ({"health": {"timeout": True}}, "nixfly.health.timeout: must be a number, not True"),
    ({"health": {"timeout": 99999}}, "at most 3600"),
    ({"health": {"timeout": float("nan")}}, "nixfly.health.timeout: nan is out of range"),
    ({"health": {"interval": 0}}, "nixfly.health.interval: 0 is out of range"),
    ({"health": {"max_interval": "x"}}, "nixfly.health.max_interval: must be a number"),
    ({"health": {"http_timeout": 0}}, "nixfly.health.http_timeout: 0 is out of range"),
    ({"health": {"http_timeout": None}}, "nixfly.health.http_timeout: must be a number, not None"),
    (
        {"health": {"timout": 3}},
        "nixfly.health.timout: is not a setting nixfly knows — did you mean 'timeout'?",
    ),
    ({"modes": 5}, "nixfly.modes: must be a mapping"),
    ({"modes": {"integrated": 5}}, "nixfly.modes.integrated: must be a mapping"),
    ({"modes": {"integrated": {"ap": "x"}}}, "did you mean 'app'?"),
    ({"timeouts": 5}, "nixfly.timeouts: must be a mapping"),
    (
        {"timeouts": {"flyctll": 5}},
        "nixfly.timeouts.flyctll: is not a setting nixfly knows — did you mean 'flyctl'?",
    ),
    ({"timeouts": {"git": 0}}, "nixfly.timeouts.git: 0 is out of range"),
    ({"timeouts": {"nix_build": "1h"}}, "nixfly.timeouts.nix_build: must be a number, not '1h'"),
    ({"preview": 5}, "nixfly.preview: must be a mapping"),
    ({"preview": {"nam": "{app}-pr-{pr}"}}, "nixfly.preview.nam: is not a setting nixfly knows"),
    ({"preview": {"volume_size_gb": 0}}, "nixfly.preview.volume_size_gb: 0 is out of range"),
    ({"preview": {"secrets": ["a b"]}}, "nixfly.preview.secrets: invalid variable name 'a b'"),
]
MODE_SETTINGS: list[tuple[str, Any, str]] = [
    ("flake_attr", 5, "must be text"),
    ("regions", {"iad": -1}, "-1 is not a number of machines"),
    ("regions", {"IAD": 1}, "'IAD' is not a Fly region code"),
    ("regions", {"iad": True}, "True is not a number of machines"),
    ("regions", ["iad"], "must be a mapping"),
    ("flake_attr", "a b", "'a b' is not valid"),
    ("flake_attr", "", "'' is not valid"),
    ("image_attr", ["x"], "must be text"),
    ("fly_config", 5, "must be text"),
    ("fly_config", "", "'' is not valid"),
    ("nixpacks_config", 5, "must be text"),
    ("app", "Bad", "invalid app name 'Bad'"),
    ("app", None, "must be text, not NoneType"),
    ("volume", "bad-name", "invalid volume name 'bad-name'"),
    ("volume", 5, "must be text"),
    ("volume_size_gb", 0, "0 is out of range"),
    ("volume_size_gb", 1.5, "must be a whole number, not 1.5"),
    ("volume_size_gb", "1", "must be a whole number, not '1'"),
    ("volume_size_gb", True, "must be a whole number, not True"),
    ("volume_size_gb", 501, "at most 500"),
    ("required_secrets", "ABC", "must be a list of variable names, not str"),
    ("required_secrets", [1], "must be text, not int"),
    ("required_secrets", ["bad-name"], "invalid variable name 'bad-name'"),
    ("health_url", "http://x/{ap}", "unknown placeholder {ap}"),
    ("health_url", "http://x/{app!r}", "unknown placeholder {app!r}"),
    ("health_url", "http://x/{app:>99999999}", "unknown placeholder {app:>99999999}"),
    ("health_url", "http://x/{0}", "unknown placeholder {0}"),
    ("health_url", "http://x/{", "is not a valid template"),
    ("health_url", "ftp://x/{app}", "is not an http(s) URL"),
    ("health_url", 5, "must be text"),
    ("service", [1], "must be text"),
    ("out_link", "/etc/passwd", "'/etc/passwd' must be a relative path without '..'"),
    ("out_link", "../result", "must be a relative path without '..'"),
    ("smoke", "bad name", "'bad name' is not valid"),
    ("start", "../../bin/sh", "must be a relative path without '..'"),
    ("start", "/bin/sh", "must be a relative path without '..'"),
    ("host_env", [1], "host_env: must be a mapping"),
    ("host_env", {"bad-name": "x"}, "invalid variable name 'bad-name'"),
    ("host_env", {"A": [1]}, "host_env.A: must be text, not list"),
    ("host_env", {"A": None}, "host_env.A: must be text, not NoneType"),
    ("host_env", {"ÄÖ": "x"}, "invalid variable name"),
]
# Invoke's own part of the file: checked before Invoke reads it (cli.check_invoke_files).
INVOKE_FILE: list[tuple[bytes | str, str, str]] = [
    ("nixfly: {bad", "file", "invoke.yaml is not valid YAML"),
    ("nixfly:\n  builder: nixpacks\n builder: x\n", "file", "invoke.yaml is not valid YAML"),
    ("- 1\n- 2\n", "file", "invoke.yaml must be a mapping of settings, not list"),
    ("just text\n", "file", "invoke.yaml must be a mapping of settings, not str"),
    ("run: 5\n", "file", "invoke.yaml: `run` must be a mapping (Invoke's own setting)"),
    ("run:\n", "file", "invoke.yaml: `run` must be a mapping"),
    ("run:\n  dry: {x: 1}\n", "file", "invoke.yaml: `run.dry` must be a single value"),
    ("tasks: [1]\n", "file", "invoke.yaml: `tasks` must be a mapping"),
    (
        "nixfy:\n  builder: nixpacks\n",
        "file",
        "invoke.yaml: the top-level key `nixfy` is not one nixfly or Invoke reads — did you mean `nixfly`?",
    ),
    ("Nixfly:\n  builder: nixpacks\n", "file", "the top-level key `Nixfly` is not one"),
    ("nixfly:\n  modes:\n    integrated:\n      host_env:\n        1: x\n", "file", "the key 1 under"),
    (b"nixfly:\n  org: \xff\xfe\n", "file", "invoke.yaml is not UTF-8 text"),
    ("", "dir", "invoke.yaml is a directory, not a file"),
    ("", "fifo", "invoke.yaml is not a regular file"),
]


def yaml_with(over: dict[str, Any]) -> Arrange:
    """invoke.yaml: the suite's own settings with ``over`` laid on top (the nixfly section)."""

    def arrange(project: Project) -> AbstractContextManager[None]:
        base = yaml.safe_load(base_yaml("http://127.0.0.1:9/{app}/health"))
        nixfly = base["nixfly"]
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(nixfly.get(key), dict):
                nixfly[key] = _merge(nixfly[key], value)
            else:
                nixfly[key] = value
        return replaced(project.root / "invoke.yaml", yaml.safe_dump(base, allow_unicode=True))

    return arrange


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if nested else value
    return out


def config_cases() -> list[Case]:
    tasks = cycle(SETTINGS_TASKS)
    cases = [Case(next(tasks), needle, arrange=yaml_with(over)) for over, needle in NIXFLY_SETTINGS]
    cases += [
        Case(
            next(tasks),
            f"nixfly.modes.integrated.{key}",
            also=(needle,),
            arrange=yaml_with({"modes": {"integrated": {key: value}}}),
        )
        for key, value, needle in MODE_SETTINGS
    ]
    cases.append(
        Case(
            ("deploy", *FAST, "--mode", "newmode"),
            "nixfly.modes.newmode: lacks flake_attr, fly_config",
            arrange=yaml_with({"modes": {"newmode": {"app": "x"}}}),
        )
    )
    cases += [
        Case(next(tasks), needle, arrange=arrange_file("invoke.yaml", content, kind))
        for content, kind, needle in INVOKE_FILE
    ]
    return cases


# --- the fly toml ----------------------------------------------------------------------------------------------
TOML = "fly-integrated.toml"
TOML_FIELDS: list[tuple[Callable[[str], str], str]] = [
    (lambda t: t.replace("internal_port = 4000", 'internal_port = "abc"'), "`http_service.internal_port` must be a whole number, not a string ('abc')"),
    (lambda t: t.replace("internal_port = 4000", "internal_port = 99999"), "`http_service.internal_port` must be from 1 to 65535"),
    (lambda t: t.replace("internal_port = 4000", "internal_port = true"), "`http_service.internal_port` must be a whole number, not a boolean"),
    (lambda t: t.replace("internal_port = 4000", "internal_port = 0"), "must be from 1 to 65535"),
    (lambda t: _http_service(t, 'http_service = "x"'), "`http_service` must be a table ([http_service]), not a string"),
    (lambda t: _http_service(t, "http_service = [1]"), "`http_service` must be a table"),
    (lambda t: t.replace("[[http_service.checks]]", "[http_service.checks]"), "`http_service.checks` must be an array of tables"),
    (lambda t: t.replace('    method = "GET"', "    method = 5"), "`http_service.checks[0].method` must be a string"),
    (lambda t: t.replace('    path = "/health"', "    path = []"), "`http_service.checks[0].path` must be a string"),
    (lambda t: t.replace("min_machines_running = 1", 'min_machines_running = "x"'), "`http_service.min_machines_running` must be a whole number"),
    (lambda t: t.replace("min_machines_running = 1", "min_machines_running = -1"), "`http_service.min_machines_running` must be 0 or more"),
    (lambda t: t.replace('  processes = ["app"]\n\n  # 2xx', '  processes = "app"\n\n  # 2xx'), "`http_service.processes` must be a list of process group names"),
    (lambda t: t.replace('WEB_PORT = "4000"', "WEB_PORT = {a = 1}"), "`env.WEB_PORT` must be a string, number or boolean, not a table"),
    (lambda t: t.replace('WEB_PORT = "4000"', "WEB_PORT = [1]"), "`env.WEB_PORT` must be a string, number or boolean, not an array"),
    (lambda t: "env = 5\n" + t.replace("[env]", "[unused_env]"), "`env` must be a table ([env]) or an array of tables"),
    (lambda t: 'kill_timeout = "abc"\n' + t, "`kill_timeout` must be a duration"),
    (lambda t: "kill_timeout = -5\n" + t, "`kill_timeout` must be a duration"),
    (lambda t: "kill_timeout = [1]\n" + t, "`kill_timeout` must be a duration"),
    (lambda t: 'kill_timeout = "5x"\n' + t, "`kill_timeout` must be a duration"),
    (lambda t: 'kill_timeout = "-5s"\n' + t, "`kill_timeout` must be a duration"),
    (lambda t: 'mounts = "x"\n' + t.replace("[[mounts]]", "[unused_mounts]"), "`mounts` must be a table ([mounts]) or an array of tables"),
    (lambda t: "mounts = [1]\n" + t.replace("[[mounts]]", "[unused_mounts]"), "`mounts` must be a table ([mounts]) or an array of tables"),
    (lambda t: t.replace('destination = "/data"', "destination = 5"), "`mounts[0].destination` must be a string"),
    (lambda t: t.replace('source = "oneshot_data"', 'source = ["x"]'), "`mounts[0].source` must be a string"),
    (lambda t: t.replace('  processes = ["app"]\n\n[http', '  processes = "app"\n\n[http'), "`mounts[0].processes` must be a list"),
    (lambda t: t.replace('app = "oneshot"', "app = 5", 1), "`app` must be a string, not a number (5)"),
    (lambda t: t.replace('primary_region = "iad"', "primary_region = 5"), "`primary_region` must be a string"),
    (lambda t: t.replace("[processes]", "processes = 5\n[unused_processes]"), "`processes` must be a table"),
    (lambda t: t.replace('app = "/bin/start-oneshot"', "app = 5"), "`processes.app` must be a string"),
    (lambda t: "services = 5\n" + t, "`services` must be a table ([services]) or an array of tables"),
    (lambda t: t + "\n[[services]]\n  internal_port = \"x\"\n  processes = [\"app\"]\n", "`services[0].internal_port` must be a whole number"),
    (lambda t: "app = \n" + t, "is not valid TOML"),
]  # fmt: skip


def _http_service(text: str, replacement: str) -> str:
    """The [http_service] table (and its checks) replaced by a top-level ``replacement`` line."""
    head, _, _ = text.partition("[http_service]")
    return replacement + "\n" + head


TOML_FILES: list[tuple[bytes | str | None, str, str]] = [
    (None, "absent", f"fly config {TOML} not found"),
    (None, "dir", f"fly config {TOML} is a directory, not a file"),
    (None, "fifo", f"fly config {TOML} is not a regular file"),
    ("/nonexistent/fly.toml", "symlink", f"fly config {TOML} is a symlink to /nonexistent/fly.toml"),
    (b'app = "\xff"\n', "file", f"fly config {TOML} is not UTF-8 text"),
]


def toml_cases() -> list[Case]:
    tasks = cycle([("deploy", *FAST), ("deploy", *FAST, "--target", "local", "--dry-run"), ("status",)])
    cases = [Case(next(tasks), needle, arrange=arrange_edit(TOML, edit)) for edit, needle in TOML_FIELDS]
    # A toml that is not a file is no reason for `inv status` to fail (it asks Fly, not the file).
    deploys = cycle([("deploy", *FAST), ("deploy", *FAST, "--target", "local", "--dry-run")])
    cases += [
        Case(next(deploys), needle, arrange=arrange_file(TOML, content, kind))
        for content, kind, needle in TOML_FILES
    ]
    # doctor reads on where deploy stops: the problem is a FAIL row, the one error line counts the failures
    cases += [
        Case(
            ("doctor",),
            "required check(s) failed: fly-integrated.toml",
            arrange=arrange_file(TOML, kind=kind),
        )
        for kind in ("dir", "fifo")
    ]
    return cases


# --- .env, .env.fly, credential files ----------------------------------------------------------------------
@contextmanager
def tracked_env_fly(project: Project) -> Iterator[None]:
    with replaced(project.root / ".env.fly", "CLAUDE_ACCESS_TOKEN='x'\n"):
        git(project, "add", "-f", ".env.fly")
        try:
            yield
        finally:
            git(project, "rm", "-q", "--cached", ".env.fly")


@contextmanager
def both(*arranged: Arrange, project: Project) -> Iterator[None]:
    with ExitStack() as stack:
        for arrange in arranged:
            stack.enter_context(arrange(project))
        yield


def together(*arranged: Arrange) -> Arrange:
    return lambda project: both(*arranged, project=project)


GOOGLE = "GOOGLE_APPLICATION_CREDENTIALS"
ENV_FILES = [
    Case(("bundle",), ".env is a directory, not a file", arrange=arrange_file(".env", kind="dir")),
    Case(("deploy", *FAST), ".env is not a regular file", arrange=arrange_file(".env", kind="fifo")),
    Case(("bundle",), ".env is not UTF-8 text (an invalid byte on line 2)", arrange=arrange_file(".env", b"A=1\nB=\xff\n")),
    Case(("bundle",), ".env: line 2 is not KEY=VALUE", arrange=arrange_file(".env", "A=1\nnot an assignment\n")),
    Case(("bundle",), "holds a carriage return that is not part of a CRLF", arrange=arrange_file(".env", "CLAUDE_ACCESS_TOKEN=a\rb\n")),
    Case(("bundle",), ".env is a symlink to /nonexistent/.env, which does not exist", arrange=arrange_file(".env", "/nonexistent/.env", "symlink")),
    Case(("bundle",), ".env.fly is not a regular file", arrange=arrange_file(".env.fly", kind="dir")),
    Case(("secrets",), ".env.fly is not a regular file", arrange=arrange_file(".env.fly", kind="fifo")),
    Case(("logs", "--target", "local"), ".env.fly is not a regular file", arrange=arrange_file(".env.fly", kind="fifo")),
    Case(("deploy", *FAST), ".env.fly is a symlink", arrange=arrange_file(".env.fly", ".env", "symlink")),
    Case(("deploy", *FAST, "--target", "local", "--dry-run"), ".env.fly is a symlink", arrange=arrange_file(".env.fly", ".env", "symlink")),
    Case(("secrets",), ".env.fly is not UTF-8 text", arrange=arrange_file(".env.fly", b"X='\xff'\n")),
    # A deploy refuses in preflight, before Nix copies the checkout (tracked files included) into the store.
    Case(("deploy", *FAST), "git tracks secrets files: .env.fly", also=("git rm --cached .env.fly",), arrange=tracked_env_fly),
    Case(("bundle",), ".env.fly is tracked by git", arrange=tracked_env_fly),
    Case(("bundle", "--env-file", "/"), "/ is not a regular file", ),
    Case(("bundle", "--env-file", "nixfly"), "nixfly is not a regular file"),
    Case(("bundle",), f"{GOOGLE} names", env={GOOGLE: "missing.json"}),
    Case(("bundle",), "google.json is a directory", env={GOOGLE: "google.json"}, arrange=arrange_file("google.json", kind="dir")),
    Case(("bundle",), "google.json is not a regular file", env={GOOGLE: "google.json"}, arrange=arrange_file("google.json", kind="fifo")),
    Case(("bundle",), "is not valid JSON (Expecting property name enclosed in double quotes at line 1 column 2)", env={GOOGLE: "google.json"}, arrange=arrange_file("google.json", "{'single': 'quotes'}")),
    Case(("deploy", *FAST), "is JSON but not an object (str)", env={GOOGLE: "google.json"}, arrange=arrange_file("google.json", '"a string"')),
    Case(("bundle",), "google.json is not UTF-8 text", env={GOOGLE: "google.json"}, arrange=arrange_file("google.json", b"{\"k\": \"\xff\"}")),
    Case(("bundle",), "cannot read /proc/self/mem", env={"CURSOR_AUTH_FILE": "/proc/self/mem"}),
    Case(("bundle",), "CLAUDE_ACCESS_TOKEN from environment holds a carriage return", env={"CLAUDE_ACCESS_TOKEN": "a\rb"}),
]  # fmt: skip


# --- the state directory and its locks -----------------------------------------------------------------------
LOCK = ".nixfly/deploy-oneshot.lock"
DAMAGED = [
    '{"pid": "x"}',
    "[1, 2]",
    "null",
    '{"pid": null}',
    '{"pid": 1.5}',
    '{"pid": true}',
    "not json",
    b"\xff",
]


def damaged_lock_cases() -> list[Case]:
    cases = []
    for index, content in enumerate(DAMAGED):
        arrange = arrange_file(LOCK, content)
        if index % 2:
            cases.append(
                Case(("deploy", *FAST), "the deploy lock of oneshot is a damaged lock file", arrange=arrange)
            )
        else:
            cases.append(Case(("lock.status",), "DAMAGED lock file (", code=0, arrange=arrange))
    return cases


def live_lock(project: Project) -> AbstractContextManager[None]:
    """A lock held by a process that is alive on this host: not this one, as in-process cases run as this
    pid, and a lock of one's own is always released."""
    holder = {
        "who": "ci",
        "host": socket.gethostname(),
        "pid": os.getppid(),
        "since": "now",
        "command": "deploy",
    }
    return replaced(project.root / LOCK, json.dumps(holder))


@contextmanager
def running_local_release(project: Project) -> Iterator[None]:
    """A pidfile naming a live session leader, as a running local release leaves it (hosts/service.py)."""
    leader = subprocess.Popen(["sleep", "600"], start_new_session=True)
    started = Path(f"/proc/{leader.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    try:
        with replaced(project.root / ".nixfly/local/run/oneshot.pid", f"{leader.pid} {started}\n"):
            yield
    finally:
        leader.kill()
        leader.wait()
        for leftover in (".nixfly/local/run", ".nixfly/local"):
            (project.root / leftover).rmdir()  # made by `replaced` for the pidfile


STATE = [
    *(
        Case(task, ".nixfly is not a directory: nixfly keeps its records there", arrange=arrange_file(".nixfly", "x"))
        for task in [("deploy", *FAST), ("lock.status",), ("status", "--target", "local"), ("bundle",)]
    ),
    Case(("deploy", *FAST), "another deploy of oneshot is running: lock held by ci@", arrange=live_lock),
    Case(("lock.release",), "belongs to ci@", arrange=live_lock),
    Case(("clean", "--state"), "a deploy is running: deploy-oneshot.lock is held by ci@", arrange=live_lock),
    Case(("clean", "--state", "--dry-run"), "a deploy is running", arrange=live_lock),
    Case(("clean", "--state"), "the local release of oneshot is running (pid", arrange=running_local_release),
    Case(("clean", "--state"), "nixfly.state_dir /tmp is not a directory inside the checkout", arrange=yaml_with({"state_dir": "/tmp"})),
    Case(("deploy", *FAST), "is a damaged lock file (it is a directory)", arrange=arrange_file(LOCK, kind="dir")),
    Case(("lock.release",), "cannot remove", arrange=arrange_file(LOCK, kind="dir")),
    *damaged_lock_cases(),
]  # fmt: skip

CASES = config_cases() + toml_cases() + ENV_FILES + STATE
SUBPROCESS = [
    Case(("deploy", *FAST), "invoke.yaml is not valid YAML", arrange=arrange_file("invoke.yaml", "nixfly: {"), subprocess=True),
    Case(("lock.status",), "invoke.yaml: `run` must be a mapping", arrange=arrange_file("invoke.yaml", "run: 5\n"), subprocess=True),
    Case(("--list",), "invoke.yaml must be a mapping of settings", arrange=arrange_file("invoke.yaml", "- 1\n"), subprocess=True),
    Case(("deploy", *FAST), "`http_service.internal_port` must be a whole number", arrange=arrange_edit(TOML, TOML_FIELDS[0][0]), subprocess=True),
    Case(("clean", "--state"), "a deploy is running", arrange=live_lock, subprocess=True),
    Case(("lock.status",), "DAMAGED lock", code=0, arrange=arrange_file(LOCK, '{"pid": "x"}'), subprocess=True),
    Case(("bundle",), ".env is not a regular file", arrange=arrange_file(".env", kind="fifo"), subprocess=True),
    # a config file Invoke reads that nixfly never sees: what escapes Invoke is still one line, exit 1
    Case(("-f", "runtime.yaml", "lock.status"), "Invoke could not load its configuration (AmbiguousMergeError", arrange=arrange_file("runtime.yaml", "run: 5\n"), subprocess=True),
    Case(("-f", "runtime.yaml", "lock.status"), "Invoke could not load its configuration (ParserError", arrange=arrange_file("runtime.yaml", "a: {b\n"), subprocess=True),
    Case(("-f", "runtime.toml", "lock.status"), "Invoke could not load its configuration (UnknownFileType", arrange=arrange_file("runtime.toml", "x = 1\n"), subprocess=True),
]  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    yield from world(tmp_path_factory.mktemp("adversarial-files"))


@parametrize(CASES)
def test_bad_file(project, capsys, case):
    check(project, case, capsys)


@parametrize(SUBPROCESS)
def test_bad_file_real_inv(project, capsys, case):
    check(project, case, capsys)


def test_every_nixfly_setting_meets_a_bad_value():
    top = {key for over, _ in NIXFLY_SETTINGS for key in over}
    health = {
        key for over, _ in NIXFLY_SETTINGS if isinstance(over.get("health"), dict) for key in over["health"]
    }
    assert top >= set(TOP_KEYS)
    assert health >= set(HEALTH_KEYS)
    assert {key for key, _, _ in MODE_SETTINGS} >= set(MODE_KEYS)


def test_clean_state_says_what_it_would_remove_when_nothing_runs(project):
    """The refusals above are not all `inv clean --state` does: with nothing running it would go ahead."""
    dry = project.inv("clean", "--state", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove .nixfly" in dry.stderr and (project.root / ".nixfly").is_dir()
