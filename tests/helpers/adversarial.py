"""The harness of the adversarial suite: one checkout, simulated Fly account and deployed app per test module,
and a way to run one bad input through a task and prove it was refused cleanly and changed nothing.

A case passes when the task exits with the expected code, prints no traceback, prints exactly one ``error:``
line (on stderr) holding the expected text — or, for an input that is fine to accept with a warning, exits 0
with no error line — and when afterwards every file of the checkout (.env.fly and .nixfly included), the
simulated Fly state and the list of mutating flyctl calls are what they were before.

Cases run in-process through Invoke's own ``Program`` (what ``inv`` runs, with this checkout's tasks.py and
invoke.yaml), which takes milliseconds; the cases marked ``subprocess`` run the real ``inv`` command, at least
one per task. Both see the same environment, working directory and files.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flyctl_sim import control
from invoke import Program

from helpers.project import Project, fake_result, simulated

FAST = ("--skip-build", "--skip-smoke")
# flyctl commands that only read: a refused input may have asked these, never anything else.
READS = {
    "auth whoami",
    "status",
    "volumes list",
    "secrets list",
    "releases",
    "checks list",
    "logs",
    "version",
    "machine list",
    "apps list",
    "auth token",  # the registry login that reads the live release's receipt (printed, never changed)
}
SKIP_DIRS = {".git", "__pycache__", ".pytest_cache"}
Arrange = Callable[[Project], AbstractContextManager[object]]


@dataclass(frozen=True)
class Case:
    """One bad input: ``args`` to ``inv``; ``needle`` must be in the one error line (or, with ``code`` 0, in
    stderr); ``parse`` marks Invoke's own parser errors, which are one line without the ``error:`` prefix."""

    args: tuple[str, ...]
    needle: str
    code: int = 1
    also: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    arrange: Arrange | None = None
    subprocess: bool = False
    parse: bool = False

    @property
    def id(self) -> str:
        shown = " ".join(repr(a)[1:-1] if len(a) < 40 else f"{repr(a)[1:30]}…" for a in self.args)
        return ("inv " if self.subprocess else "") + shown


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


def world(base: Path) -> Iterator[Project]:
    """A fresh checkout, deployed once to a fresh simulated account: each adversarial module's fixture."""
    with simulated(base, PYTHONDONTWRITEBYTECODE="1") as project:
        fake_result(project)
        deployed = project.inv("deploy", *FAST)
        assert deployed.returncode == 0, deployed.stderr
        yield project


# --- what "nothing changed" means ---------------------------------------------------------------------------
def files(root: Path) -> dict[str, str]:
    """Every file of the checkout (but git's own and bytecode caches) → a digest of its content, its link
    target or its kind; directories are listed too, so an emptied or added one shows."""
    found: dict[str, str] = {}
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        here = Path(dirpath)
        found[f"{here.relative_to(root)}/"] = "dir"
        for name in [*names, *(d for d in dirs if (here / d).is_symlink())]:
            path = here / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[rel] = "special"
    return found


@dataclass(frozen=True)
class Snapshot:
    files: dict[str, str]
    fly: dict[str, Any]
    calls: int

    @classmethod
    def of(cls, project: Project) -> Snapshot:
        state = control.read_state(project.sim)
        return cls(files(project.root), state["apps"], len(control.calls(project.sim)))

    def assert_unchanged(self, project: Project) -> None:
        now = Snapshot.of(project)
        changed = sorted(
            name for name in {*self.files, *now.files} if self.files.get(name) != now.files.get(name)
        )
        assert changed == [], f"files changed: {changed}"
        assert now.fly == self.fly, "the simulated Fly state changed"
        mutating = [
            c.get("command") or " ".join(c["argv"][:2])
            for c in control.calls(project.sim)[self.calls :]
            if (c.get("command") or "") not in READS
        ]
        assert mutating == [], f"flyctl was asked to change something: {mutating}"


# --- running a case -----------------------------------------------------------------------------------------
def run_inline(project: Project, args: tuple[str, ...], env: dict[str, str], capsys: Any) -> Ran:
    """``inv ARGS`` in this process: Invoke's Program, the checkout's tasks.py and invoke.yaml."""
    saved_env, saved_cwd, saved_path, saved_hook = (
        dict(os.environ),
        os.getcwd(),
        list(sys.path),
        sys.excepthook,
    )
    os.environ.clear()
    os.environ.update({**project.env, **env})
    os.chdir(project.root)
    capsys.readouterr()
    code = 0
    try:
        Program().run(["inv", "--search-root", str(project.root), *args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        sys.excepthook = saved_hook
        sys.modules.pop("tasks", None)
    out, err = capsys.readouterr()
    return Ran(code, out, err)


def run_subprocess(project: Project, args: tuple[str, ...], env: dict[str, str]) -> Ran:
    done = project.inv(*args, env=env, timeout=120)
    return Ran(done.returncode, done.stdout, done.stderr)


def check(project: Project, case: Case, capsys: Any) -> Ran:
    """Run ``case`` and assert everything a refused input must satisfy; returns what it printed."""
    arranged = case.arrange(project) if case.arrange else nullcontext()
    with arranged:
        before = Snapshot.of(project)
        ran = (
            run_subprocess(project, case.args, case.env)
            if case.subprocess
            else run_inline(project, case.args, case.env, capsys)
        )
        shown = f"exit {ran.code}\nstdout:\n{ran.stdout}\nstderr:\n{ran.stderr}"
        assert "Traceback" not in ran.stdout + ran.stderr, shown
        assert ran.code == case.code, shown
        errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
        if case.parse:
            lines = [line for line in ran.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and case.needle in lines[0], shown
        elif case.code == 0:
            assert errors == [] and case.needle in ran.stderr, shown
        else:
            assert len(errors) == 1, shown
            assert all(needle in errors[0] for needle in (case.needle, *case.also)), shown
        before.assert_unchanged(project)
    return ran


# --- arranging inputs (each undoes itself) ------------------------------------------------------------------
@contextmanager
def replaced(path: Path, content: bytes | str | None = None, *, kind: str = "file") -> Iterator[None]:
    """``path`` holds ``content`` (or is a directory, a FIFO, a symlink to ``content``) for the block."""
    backup = path.with_name(path.name + ".adversarial-backup")
    existed = os.path.lexists(path)
    if existed:
        os.rename(path, backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "file":
            data = content.encode() if isinstance(content, str) else content or b""
            path.write_bytes(data)
        elif kind == "dir":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "symlink":
            path.symlink_to(str(content))
        elif kind != "absent":
            raise ValueError(kind)
        yield
    finally:
        if path.is_dir() and not path.is_symlink():
            for child in sorted(path.rglob("*"), reverse=True):
                child.rmdir() if child.is_dir() and not child.is_symlink() else child.unlink()
            path.rmdir()
        elif os.path.lexists(path):
            path.unlink()
        if existed:
            os.rename(backup, path)


def arrange_file(relative: str, content: bytes | str | None = None, kind: str = "file") -> Arrange:
    return lambda project: replaced(project.root / relative, content, kind=kind)


def arrange_edit(relative: str, edit: Callable[[str], str]) -> Arrange:
    """``relative`` with ``edit`` applied to its text."""

    def arrange(project: Project) -> AbstractContextManager[None]:
        path = project.root / relative
        return replaced(path, edit(path.read_text()))

    return arrange


def git(project: Project, *args: str) -> None:
    subprocess.run(["git", "-C", str(project.root), *args], check=True, capture_output=True, env=project.env)


def all_tasks(cases: list[Case]) -> set[str]:
    """The tasks ``cases`` exercise (the first word that is not a core flag)."""
    return {case.args[0] for case in cases}


def ids(cases: list[Case]) -> list[str]:
    return [case.id for case in cases]


def parametrize(cases: list[Case]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("case", cases, ids=ids(cases))
