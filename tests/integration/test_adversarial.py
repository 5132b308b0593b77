"""The adversarial suite, flags: every task given bad values the way a careless or hostile user types them.

Each bad value of a flag is generated into a case for one of the tasks that take that flag (round robin, so
every task meets several), plus hand-written combinations and Invoke's own parse errors. Every case asserts
the exit code, no traceback, exactly one ``error:`` line naming the problem, and that nothing changed on the
simulated Fly or on disk (``helpers/adversarial.py``). Property tests (hypothesis) throw arbitrary text at
the name and number flags.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import cycle
from pathlib import Path

import pytest
from helpers.adversarial import FAST, Case, all_tasks, check, parametrize, world
from helpers.project import Project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixfly.config import APP_NAME

LONG = "x" * 100_000  # a whole screenful is not echoed back (errors.brief)

# flag → the tasks taking it (with what else they need to get that far without building anything)
TAKES: dict[str, list[tuple[str, ...]]] = {
    "mode": [
        ("deploy", *FAST),
        ("build",),
        ("bundle",),
        ("secrets",),
        ("doctor",),
        ("status",),
        ("logs",),
        ("releases",),
        ("rollback",),
        ("stop",),
        ("apps.create",),
        ("volumes.create",),
        ("lock.status",),
        ("lock.release",),
        ("image.build",),
        ("image.push",),
        ("image.inspect",),
        ("cache.push", "--name", "c"),
    ],
    "app": [
        ("deploy", *FAST),
        ("secrets",),
        ("status",),
        ("logs",),
        ("releases",),
        ("rollback",),
        ("apps.create",),
        ("volumes.create",),
        ("lock.status",),
        ("lock.release",),
        ("image.push",),
    ],
    "region": [("deploy", *FAST), ("volumes.create",)],
    "strategy": [("deploy", *FAST)],
    "builder": [("deploy", *FAST)],
    "target": [("deploy", *FAST), ("status",), ("logs",), ("rollback",), ("stop",)],
    "on": [("deploy",), ("build",), ("image.build",), ("image.push",)],
    "port": [("deploy", *FAST, "--target", "local")],
    "to": [("rollback",)],
    "timeout": [("logs",)],
    "lines": [("logs", "--target", "local")],
    "web-port": [("dev",)],
    "ai-port": [("dev",)],
    "env-file": [("bundle",), ("secrets",)],
}

BAD: dict[str, list[tuple[str, str]]] = {
    "mode": [
        ("integrated\n", "unknown mode 'integrated\\n'"),
        ("ïntegrated", "unknown mode"),
        ("integrated; touch PWNED", "unknown mode"),
        ("INTEGRATED", "unknown mode"),
        ("integrated ", "unknown mode"),
        ("", "unknown mode ''"),
        ("both", "choose one of: ai-server-only, integrated"),
        (LONG, "(100000 chars)"),
    ],
    "app": [
        ("oneshot\n", "invalid app name 'oneshot\\n'"),
        ("Oneshot", "invalid app name"),
        ("a" * 64, "invalid app name"),
        ("ønë", "invalid app name"),
        ("$(touch PWNED)", "invalid app name"),
        ("-x", "invalid app name"),
        ("x-", "invalid app name"),
        ("a_b", "invalid app name"),
        ("a b", "invalid app name"),
        ("../etc", "invalid app name"),
        (LONG, "(100000 chars)"),
    ],
    "region": [
        ("iad\n", "invalid region 'iad\\n'"),
        ("IAD", "invalid region"),
        ("ia", "invalid region"),
        ("iadx", "invalid region"),
        ("i d", "invalid region"),
        ("ïad", "invalid region"),
        ("$(id)", "invalid region"),
    ],
    "strategy": [
        ("yolo", "unknown strategy 'yolo'"),
        ("rolling\n", "unknown strategy"),
        ("ROLLING", "unknown strategy"),
    ],
    "builder": [("docker", "unknown builder 'docker'"), ("image\n", "unknown builder")],
    "target": [
        ("nonsense", "unknown target 'nonsense'"),
        ("local\n", "unknown target"),
        (" local", "unknown target"),
        ("ssh://", "invalid SSH host"),
        ("ssh://u@h\n", "invalid SSH host"),
        ("ssh://-oProxyCommand=touch PWNED", "invalid SSH host"),
        ("ssh://u@h:0", "invalid SSH host"),
        ("ssh://u@h:99999", "invalid SSH host"),
        ("ssh://u h@x", "invalid SSH host"),
        ("Fly", "unknown target"),
    ],
    "on": [
        ("@@", "invalid SSH host"),
        ("u@h\n", "invalid SSH host"),
        ("-oProxyCommand=touch PWNED", "invalid SSH host"),
        ("u@h:99999", "invalid SSH host"),
        ("u@", "invalid SSH host"),
        ("u@h:abc", "invalid SSH host"),
        ("u@h;id", "invalid SSH host"),
    ],
    "port": [
        ("abc", "--port 'abc' is not a whole number"),
        ("-1", "--port -1 is out of range"),
        ("65536", "--port 65536 is out of range"),
        ("1_000", "not a whole number"),
        (" 80", "not a whole number"),
        ("٣", "not a whole number"),
        ("1e3", "not a whole number"),
        ("8080\n", "not a whole number"),
    ],
    "to": [("abc", "--to 'abc' is not a whole number"), ("-1", "out of range"), ("1.5", "not a whole")],
    "timeout": [
        ("abc", "--timeout 'abc' is not a number of seconds"),
        ("0", "--timeout 0 is out of range"),
        ("-1", "not a number of seconds"),
        ("inf", "not a number of seconds"),
        ("nan", "not a number of seconds"),
        ("1e3", "not a number of seconds"),
        ("86401", "out of range"),
    ],
    "lines": [
        ("abc", "--lines 'abc' is not a whole number"),
        ("0", "out of range"),
        ("100001", "out of range"),
    ],
    "web-port": [("abc", "--web-port 'abc'"), ("0", "out of range"), ("70000", "out of range")],
    "ai-port": [("abc", "--ai-port 'abc'"), ("0", "out of range")],
    "env-file": [("a\nb", "--env-file 'a\\nb' is not a usable file name"), ("x\x01y", "not a usable file")],
}


def generated() -> list[Case]:
    cases = []
    for flag, values in BAD.items():
        tasks = cycle(TAKES[flag])
        for value, needle in values:
            task = next(tasks)
            cases.append(Case((*task, f"--{flag}", value), needle))
    return cases


@contextmanager
def no_result(project: Project) -> Iterator[None]:
    link = project.root / "result"
    target = link.readlink()
    link.unlink()
    try:
        yield
    finally:
        link.symlink_to(target)


SECRET_KEY = "cache-1:" + "A" * 86 + "=="  # 64 bytes: a signing key, never echoed
HAND_WRITTEN = [
    # flags that cannot go together, or do not apply
    Case(("deploy", "--skip-build", "--on", "u@h"), "--skip-build cannot be combined with --on"),
    Case(("deploy", *FAST, "--port", "8080"), "--port applies to local and ssh:// targets"),
    Case(("stop", "--target", "fly"), "`inv stop` works on local and ssh:// targets"),
    Case(("deploy", *FAST), "--skip-build but result does not exist", arrange=no_result),
    Case(("rollback", "--to", "99"), "no release v99"),
    Case(("rollback", "--target", "local"), "has no earlier generation"),
    # the binary cache tasks
    Case(("cache.use",), "no cache given"),
    Case(("cache.use", "--name", "c", "--url", "https://x"), "either a Cachix cache name or a URL"),
    Case(("cache.use", "--name", "x y"), "'x y' is not a Cachix cache name"),
    Case(("cache.use", "--name", "-x"), "is not a Cachix cache name"),
    Case(("cache.use", "--name", "c\n"), "is not a Cachix cache name"),
    Case(("cache.use", "--key", "k:AAAA"), "a key needs the URL of its cache"),
    Case(("cache.use", "--url", "ftp://x", "--key", "k:AAAA"), "unsupported scheme 'ftp'"),
    Case(("cache.use", "--url", "https://x y", "--key", "k:AAAA"), "is not a binary cache URL"),
    Case(("cache.use", "--url", "https://x#y", "--key", "k:AAAA"), "is not a binary cache URL"),
    Case(("cache.use", "--url", "file://relative/dir", "--key", "k:AAAA"), "needs an absolute path"),
    Case(("cache.use", "--url", "https://", "--key", "k:AAAA"), "no host (or bucket)"),
    Case(("cache.use", "--url", "https://c.example"), "no public key given"),
    Case(("cache.use", "--url", "https://c.example", "--key", "nocolon"), "not of the form NAME:BASE64"),
    Case(("cache.use", "--url", "https://c.example", "--key", "k:!!!"), "is not valid base64"),
    Case(("cache.use", "--url", "https://c.example", "--key", "k:AAAA"), "holds 3 bytes"),
    Case(("cache.use", "--url", "https://c.example", "--key", SECRET_KEY), "is a SECRET key"),
    Case(("cache.push",), "give exactly one cache to push to"),
    Case(("cache.push", "--name", "c", "--url", "https://x"), "give exactly one cache to push to"),
    Case(("cache.push", "--url", "gopher://x"), "unsupported scheme 'gopher'"),
    # Invoke's own parser: one line, no traceback
    Case(("deploy", "--bogus"), "No idea what '--bogus' is!", parse=True),
    Case(("logs", "--timeout"), "timeout (t)> needed value and was not given one!", parse=True),
    Case(("nosuchtask",), "No idea what 'nosuchtask' is!", parse=True),
    Case(("update", "--mode", "integrated"), "No idea what '--mode' is!", parse=True),
    Case(("deps.update", "extra"), "No idea what 'extra' is!", parse=True),
]

# The real `inv`, one bad input per task (the in-process cases above run the same Program).
SUBPROCESS = [
    Case(("deploy", *FAST, "--app", "oneshot\n"), "invalid app name", subprocess=True),
    Case(("build", "--on", "u@h\n"), "invalid SSH host", subprocess=True),
    Case(("bundle", "--mode", "nope"), "unknown mode", subprocess=True),
    Case(("secrets", "--app", "Bad"), "invalid app name", subprocess=True),
    Case(("doctor", "--mode", "integrated\n"), "unknown mode", subprocess=True),
    Case(("status", "--target", "ssh://u@h\n"), "invalid SSH host", subprocess=True),
    Case(("logs", "--timeout", "abc"), "not a number of seconds", subprocess=True),
    Case(("releases", "--app", "-x"), "invalid app name", subprocess=True),
    Case(("rollback", "--to", "abc"), "not a whole number", subprocess=True),
    Case(("stop", "--target", "nonsense"), "unknown target", subprocess=True),
    Case(("dev", "--web-port", "abc"), "--web-port 'abc' is not a whole number", subprocess=True),
    Case(("apps.create", "--app", "a" * 64), "invalid app name", subprocess=True),
    Case(("volumes.create", "--region", "iad\n"), "invalid region", subprocess=True),
    Case(("lock.status", "--app", "x/../y"), "invalid app name", subprocess=True),
    Case(("lock.release", "--app", "$(id)"), "invalid app name", subprocess=True),
    Case(("image.build", "--on", "-oProxyCommand=x"), "invalid SSH host", subprocess=True),
    Case(("image.push", "--app", "ønë"), "invalid app name", subprocess=True),
    Case(("image.inspect", "--mode", LONG[:5000]), "(5000 chars)", subprocess=True),
    Case(("cache.use", "--url", "ftp://x", "--key", "k:AAAA"), "unsupported scheme", subprocess=True),
    Case(("cache.push", "--name", "x y"), "is not a Cachix cache name", subprocess=True),
    Case(("update", "--bogus"), "No idea what '--bogus' is!", subprocess=True, parse=True),
    Case(("deps.update", "--dry-run", "--bogus"), "No idea what '--bogus' is!", subprocess=True, parse=True),
    Case(("clean", "--bogus"), "No idea what '--bogus' is!", subprocess=True, parse=True),
]

CASES = generated() + HAND_WRITTEN
EVERY_TASK = {
    "deploy", "build", "bundle", "secrets", "doctor", "status", "logs", "releases", "rollback", "stop", "dev",
    "clean", "update", "apps.create", "volumes.create", "lock.status", "lock.release", "image.build",
    "image.push", "image.inspect", "cache.use", "cache.push", "deps.update",
}  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    yield from world(tmp_path_factory.mktemp("adversarial"))


def test_every_task_meets_bad_input_in_process_and_as_the_real_inv():
    assert all_tasks(CASES) | all_tasks(SUBPROCESS) >= EVERY_TASK - {"clean", "update"}
    assert all_tasks(SUBPROCESS) == EVERY_TASK


@parametrize(CASES)
def test_bad_flag(project, capsys, case):
    check(project, case, capsys)
    assert not (project.root / "PWNED").exists()


@parametrize(SUBPROCESS)
def test_bad_flag_real_inv(project, capsys, case):
    check(project, case, capsys)


# --- generated by hypothesis: any text that is not a Fly app name / a port number ---------------------------
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


# `--flag=VALUE`: Invoke would read a value such as "--dry-run" after a bare `--app` as the next flag.
@PROPERTY
@given(name=TEXT.filter(lambda s: s != "" and not APP_NAME.fullmatch(s)))
def test_any_non_app_name_is_refused(project, capsys, name):
    check(project, Case(("deploy", *FAST, f"--app={name}"), "invalid app name"), capsys)


def _port(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) <= 65535


@PROPERTY
@given(port=TEXT.filter(lambda s: s != "" and not _port(s)))
def test_any_non_port_is_refused(project, capsys, port):
    check(project, Case(("deploy", *FAST, "--target", "local", f"--port={port}"), "--port"), capsys)


def test_generated_cases_cover_every_flag_that_takes_text():
    assert {flag for case in generated() for flag in case.args if flag.startswith("--")} >= {
        f"--{flag}" for flag in BAD
    }


def test_pwned_markers_were_never_created(project):
    assert not Path("PWNED").exists() and not (project.root / "PWNED").exists()
