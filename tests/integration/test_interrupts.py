"""Ctrl-C at every deploy step: it stops, says where and how to go back, leaves what is live alone.

A SIGINT reaches `inv deploy` while a step waits on something slow — a simulated flyctl told to take its
time, or a stand-in for git, nix, gh or flyctl on PATH that sleeps on the one call the step makes. Each case
asserts: exit 130, "interrupted during <step>" (and how to go back where a release exists), no rollback
started (no `deploy --strategy immediate` beyond one already running), no process of the run left (found by a
mark in the environment every child inherits, so other test runs on this machine are never counted), the
lock released, no `*.tmp` file, and that running the same command again finishes the deploy.

Also: a second Ctrl-C while the runner waits out a child's TERM grace still ends in KILL; the local
target's activate and verify steps, and an ssh:// target's copy; and the smoke step's services (and the
smoke test run stopped on its own) leave nothing running.
"""

# ruff: noqa: E501 (the case tables read best one case per line)

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex

import pytest
from flyctl_sim import control
from helpers import procs, tinyapps
from helpers.procs import free_port
from helpers.project import REPO, Project, require
from helpers.sshd import kill_session, running_sshd

FAST = ("--skip-build", "--skip-smoke")
SLOW = 120  # seconds a slowed command would take: far longer than any test waits


@dataclass
class Run:
    """`inv ARGS` running in the background, its output in files, every process it starts marked."""

    project: Project
    proc: subprocess.Popen[bytes]
    mark: str
    out: Path
    err: Path

    @classmethod
    def start(cls, project: Project, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Run:
        mark = f"NIXFLY_TEST_RUN={token_hex(6)}"
        name, value = mark.split("=")
        out, err = tmp_path / f"{value}.out", tmp_path / f"{value}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "invoke", *args],
                cwd=project.root,
                env={**project.env, **(env or {}), name: value},
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        return cls(project, proc, mark, out, err)

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def processes(self, *words: str) -> list[procs.Proc]:
        """Running processes this run started (itself excluded) whose command line holds ``words``."""
        return [
            p
            for p in procs.marked(self.mark)
            if p.pid != self.proc.pid and all(word in p.cmdline for word in words)
        ]

    def wait_for(self, condition: Callable[[], object], what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail(f"inv ended (exit {self.proc.returncode}) before {what}:\n{self.stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.stderr}")
            time.sleep(0.05)

    def in_step(self, step: str, *words: str) -> None:
        """Wait until ``step`` runs and, if ``words`` are given, its slow child has started."""
        self.wait_for(lambda: f"→ {step}\n" in self.stderr, f"step {step}")
        if words:
            # No pause after the child shows in /proc: a Ctrl-C that lands before Popen has returned in
            # nixfly is held until the child is registered (runner._interrupt_held), and stops it then.
            self.wait_for(lambda: self.processes(*words), f"{' '.join(words)} in step {step}")

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        self.proc.wait(timeout)
        return self.proc.returncode, self.stderr

    def kill_leftovers(self) -> None:
        for p in procs.marked(self.mark):
            with suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    """Runs a test started: whatever the test asserted, nothing of theirs outlives it."""
    started: list[Run] = []
    yield started
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
        run.kill_leftovers()


def fake(project: Project, tmp_path: Path, name: str, body: str) -> dict[str, str]:
    """A stand-in ``name`` first on the project's PATH: a shell script (``$REAL`` is the real program)."""
    directory = tmp_path / "fakebin"
    directory.mkdir(exist_ok=True)
    path = project.env["PATH"]
    real = shutil.which(name, path=path) or ""
    script = directory / name
    script.write_text(f'#!/bin/sh\nREAL="{real}"\n{body}\n')
    script.chmod(0o755)
    return {"PATH": f"{directory}{os.pathsep}{path}"}


def slow_on(project: Project, tmp_path: Path, name: str, pattern: str) -> dict[str, str]:
    """``name`` sleeps when its arguments match the shell ``case`` pattern, else is the real one."""
    body = f'case " $* " in {pattern}) exec sleep {SLOW} ;; esac\nexec "$REAL" "$@"'
    return fake(project, tmp_path, name, body)


def rotate(project: Project, value: str) -> None:
    """A changed secret: the next deploy has real work (a secret to stage, a release to make)."""
    (project.root / ".env").write_text(f"CLAUDE_ACCESS_TOKEN={value}\nGH_TOKEN=canary-gh-2b8d4e6f\n")


def deployed_v1(project: Project) -> None:
    done = project.inv("deploy", *FAST)
    assert done.returncode == 0, done.stderr
    rotate(project, "rotated-before-ctrl-c")


def rollbacks(project: Project) -> int:
    return sum(1 for c in project.flyctl_calls() if c.get("command") == "deploy" and "immediate" in c["argv"])


def assert_stopped_cleanly(project: Project, run: Run, step: str, code: int, err: str) -> None:
    assert code == 130, err
    assert f"interrupted during {step}" in err, err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "run `inv deploy --mode integrated" in line, line
    assert run.processes() == [], [p.cmdline for p in run.processes()]
    assert not (project.root / ".nixfly" / "deploy-oneshot.lock").exists()
    assert [p for p in project.root.rglob("*.tmp") if ".git" not in p.parts] == []


# --- Fly: every step ---------------------------------------------------------------------------------------
def fake_result(project: Project) -> Path:
    """A stand-in ./result whose programs start a child in a process group of its own (as start-oneshot
    does) and never answer: the smoke tests wait for them."""
    store = project.root.parent / "store" / "0123456789abcdfghijklmnpqrsvwxyz-oneshot-integrated"
    (store / "bin").mkdir(parents=True, exist_ok=True)
    for name in ("start-oneshot", "web", "ai-server"):
        program = store / "bin" / name
        program.write_text(
            f'#!/bin/bash\nset -m\n{sys.executable} -c "import time; time.sleep({SLOW})" "$0.child" &\nwait\n'
        )
        program.chmod(0o755)
    for link in ("result", "result-ai-server"):
        (project.root / link).symlink_to(store)
    return store


def services_of(store: Path) -> list[str]:
    """Running programs of the stand-in result (and what they started)."""
    return [p.cmdline for p in procs.table() if p.running and str(store) in p.cmdline]


@dataclass(frozen=True)
class Step:
    name: str
    slow: tuple[str, ...]  # words of the slow child's command line
    args: tuple[str, ...] = FAST
    v1_first: bool = False
    arrange: Callable[[Project, Path], dict[str, str]] = lambda project, tmp_path: {}
    back: str = ""  # what the error line says about going back


def delay(command: str) -> Callable[[Project, Path], dict[str, str]]:
    def arrange(project: Project, tmp_path: Path) -> dict[str, str]:
        control.set_delay(project.sim, command, SLOW)
        return {}

    return arrange


def no_gh_token(project: Project) -> None:
    """A .env without GH_TOKEN: the bundle step asks `gh auth token` for it."""
    (project.root / ".env").write_text("CLAUDE_ACCESS_TOKEN=canary-claude-7f3a9c1e\n")


def clear_delays(project: Project) -> None:
    with control.edit(project.sim) as state:
        state["delays"] = {}


def rollback_arrange(project: Project, tmp_path: Path) -> dict[str, str]:
    """v2 fails its checks, so nixfly rolls back; the rollback's `flyctl deploy --strategy immediate` is
    slow (a stand-in flyctl in front of the simulator)."""
    control.set_health_plan(project.sim, "oneshot", ["fail"])
    env = slow_on(project, tmp_path, "flyctl", "*' immediate '*")
    return {**env, "NIXFLY_FLYCTL": str(tmp_path / "fakebin" / "flyctl")}


BACK = "`inv rollback --to 1` puts v1 back"
STEPS = [
    # Fly's reads (who is logged in among them) start once the lock is held, and the lock step waits for the
    # login read; preflight itself runs no command on the way to Fly.
    Step("lock", ("auth", "whoami"), arrange=delay("auth whoami")),
    Step("lock", ("sleep",), arrange=lambda p, t: slow_on(p, t, "git", "*' rev-parse --short HEAD '*")),
    Step("build", ("sleep",), args=("--skip-smoke",), arrange=lambda p, t: slow_on(p, t, "nix", "*' build '*")),
    Step("smoke", (), args=("--skip-build",)),
    Step("bundle", ("sleep",), arrange=lambda p, t: no_gh_token(p) or slow_on(p, t, "gh", "*' auth token '*")),
    Step("app", ("apps", "create"), arrange=delay("apps create")),
    Step("volume", ("volumes", "create"), arrange=delay("volumes create")),
    Step("secrets", ("secrets", "import"), arrange=delay("secrets import")),
    Step("image", ("sleep",), args=(*FAST, "--builder", "image"), arrange=lambda p, t: slow_on(p, t, "nix", "*' build '*")),
    # The diff step (first in the plan) is the first to wait for the releases read: it needs the live
    # release's receipt. The release step then reuses that read, so a slow `flyctl releases` is met here.
    Step("diff", ("releases",), v1_first=True, arrange=delay("releases")),
    Step("deploy", ("deploy", "--app"), v1_first=True, arrange=delay("deploy"), back=f"flyctl deploy was stopped part-way: `inv status` shows what each machine runs; {BACK}"),
    Step("verify", ("checks", "list"), args=(*FAST, "--force"), v1_first=True, arrange=delay("checks list"), back=f"v2 is live and was not verified; nothing was rolled back: {BACK}"),
    Step("rollback", ("sleep",), args=(*FAST, "--force"), v1_first=True, arrange=rollback_arrange, back=f"the rollback was stopped part-way: {BACK}"),
]  # fmt: skip


@pytest.mark.parametrize("step", STEPS, ids=[f"{s.name}-{s.slow[0]}" if s.slow else s.name for s in STEPS])
def test_ctrl_c_during_each_fly_step(project, tmp_path, runs, step):
    store = fake_result(project)
    if step.v1_first:
        deployed_v1(project)
    env = step.arrange(project, tmp_path)
    rollbacks_before = rollbacks(project)
    run = Run.start(project, tmp_path, "deploy", *step.args, env=env)
    runs.append(run)
    if step.name == "smoke":
        # The services of the smoke tests: their environment is their own, so they are found by path.
        run.wait_for(lambda: services_of(store), "the smoke tests' services")
    run.in_step(step.name, *step.slow)
    run.interrupt()
    code, err = run.finish()
    assert_stopped_cleanly(project, run, step.name, code, err)
    assert step.back in err
    # A Ctrl-C never starts a rollback; the rollback step's own deploy is the one that was running.
    assert rollbacks(project) == rollbacks_before
    assert services_of(store) == [], "the smoke tests' services outlived the Ctrl-C"
    if step.name == "rollback":
        return  # what to do next is the user's call: the message says how to go back
    clear_delays(project)
    again = project.inv("deploy", *FAST)
    assert again.returncode == 0, again.stderr


def test_second_ctrl_c_during_the_term_grace_still_kills(project, tmp_path, runs):
    """A child that ignores TERM holds the runner in its grace period; a second Ctrl-C there must not skip
    the KILL (the flyctl deploy would run on after nixfly exited and the lock was gone)."""
    fake_result(project)
    deployed_v1(project)
    control.set_delay(project.sim, "deploy", SLOW)
    env = fake(project, tmp_path, "flyctl", f"trap '' TERM\nexec {control.FLYCTL} \"$@\"")
    run = Run.start(
        project, tmp_path, "deploy", *FAST, env={**env, "NIXFLY_FLYCTL": str(tmp_path / "fakebin" / "flyctl")}
    )
    runs.append(run)
    run.in_step("deploy", "deploy", "--app")
    run.interrupt()
    # The runner TERMs the flyctl (ignored) and waits up to its 5 s grace; the second Ctrl-C lands in there.
    time.sleep(1)
    assert run.processes("deploy", "--app"), "the flyctl should still be in its grace period"
    run.interrupt()
    code, err = run.finish()
    assert_stopped_cleanly(project, run, "deploy", code, err)
    assert rollbacks(project) == 0


# --- TERM, HUP and KILL: a closed terminal, `kill`, CI cancelling the job ---------------------------------------
SIGNALLED = {step.name: step for step in STEPS if step.name in ("build", "image", "deploy", "verify")}


@pytest.mark.parametrize(
    ("step", "signum"),
    [
        ("build", signal.SIGTERM),
        ("image", signal.SIGHUP),
        ("deploy", signal.SIGTERM),
        ("verify", signal.SIGHUP),
    ],
)
def test_term_and_hup_stop_a_deploy_as_ctrl_c_does(project, tmp_path, runs, step, signum):
    """TERM or HUP mid-step gets what Ctrl-C gets: every child stopped, the lock released, the summary
    and how to go back; exit 128 + the signal's number. The same deploy run again finishes."""
    case = SIGNALLED[step]
    fake_result(project)
    if case.v1_first:
        deployed_v1(project)
    env = case.arrange(project, tmp_path)
    run = Run.start(project, tmp_path, "deploy", *case.args, env=env)
    runs.append(run)
    run.in_step(step, *case.slow)
    run.proc.send_signal(signum)
    code, err = run.finish()
    assert code == 128 + signum, err
    assert f"interrupted by {signal.Signals(signum).name} during {step}" in err, err
    assert f"| {step}" in err or f" {step} " in err  # the summary table was printed
    assert "Traceback" not in err
    assert case.back in err
    assert run.processes() == [], [p.cmdline for p in run.processes()]
    assert not (project.root / ".nixfly" / "deploy-oneshot.lock").exists()
    clear_delays(project)
    again = project.inv("deploy", *FAST)
    assert again.returncode == 0, again.stderr


def test_after_kill_9_the_rerun_waits_for_the_killed_runs_commands(project, tmp_path, runs):
    """`kill -9` skips every cleanup: the run's `flyctl deploy` runs on in its own session. A rerun must not
    take the lock while it does (it would deploy beside it); once it has ended, the rerun finishes."""
    fake_result(project)
    deployed_v1(project)
    control.set_delay(project.sim, "deploy", SLOW)
    run = Run.start(project, tmp_path, "deploy", *FAST)
    runs.append(run)
    run.in_step("deploy", "deploy", "--app")
    run.proc.kill()
    run.proc.wait(60)
    orphans = run.processes("deploy", "--app")
    assert orphans, "the killed run's flyctl deploy should run on"
    refused = project.inv("deploy", *FAST)
    assert refused.returncode == 1, refused.stderr
    assert "a killed deploy of oneshot still has commands running" in refused.stderr, refused.stderr
    assert f"pid {orphans[0].pid}" in refused.stderr
    run.kill_leftovers()
    clear_delays(project)
    again = project.inv("deploy", *FAST)
    assert again.returncode == 0, again.stderr
    assert "removing stale deploy lock" in again.stderr


# --- local and ssh targets -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tinyapps.TinyApps]:
    require("nix")
    built = tinyapps.build(tmp_path_factory.mktemp("tinyapps"))
    yield built
    built.kill_all()


@pytest.fixture
def host_project(project: Project) -> Iterator[Project]:
    """The project set up for `--target local`: a long kill_timeout and a patient health gate."""
    tinyapps.use_local(project, port=free_port(), kill_timeout=SLOW, health_timeout=SLOW)
    try:
        yield project
    finally:
        kill_session(tinyapps.pidfile(project))


def live_pid(project: Project) -> int:
    return int(tinyapps.pidfile(project).read_text().split()[0])


def test_ctrl_c_during_local_activate_leaves_the_running_release_alone(host_project, apps, tmp_path, runs):
    project = host_project
    assert tinyapps.deploy_local(project, apps["stubborn"]).returncode == 0
    live = live_pid(project)
    tinyapps.point_result(project, apps["ok"])
    run = Run.start(project, tmp_path, "deploy", *FAST, "--target", "local")
    runs.append(run)
    run.in_step("activate", "nixfly stop", "oneshot.pid")  # waiting out the stubborn release's kill_timeout
    run.interrupt()
    code, err = run.finish()
    assert_stopped_cleanly(project, run, "activate", code, err)
    assert procs.running(live), "the release that was live must be left alone"
    assert "| rollback" not in err


def test_ctrl_c_during_local_verify_says_how_to_go_back(host_project, apps, tmp_path, runs):
    project = host_project
    assert tinyapps.deploy_local(project, apps["ok"]).returncode == 0
    tinyapps.point_result(project, apps["sick"])
    run = Run.start(project, tmp_path, "deploy", *FAST, "--target", "local")
    runs.append(run)
    run.in_step("verify")  # polling /health in nixfly itself: no child to wait for
    run.interrupt()
    code, err = run.finish()
    assert_stopped_cleanly(project, run, "verify", code, err)
    assert "generation 2 runs unverified on local; not rolled back" in err
    assert "`inv rollback --target local` puts generation 1 back" in err
    assert procs.running(live_pid(project)), "the unverified release is left running, as the message says"


def test_ctrl_c_during_ssh_copy(project, apps, tmp_path, runs):
    """An ssh:// target's copy step is `nix copy --to ssh://…` (a local target has nothing to copy)."""
    tinyapps.use_local(project, port=free_port())
    tinyapps.point_result(project, apps["ok"])
    with running_sshd(tmp_path / "sshd") as sshd:
        sshd.forget_store()  # a host without the closure: the deploy copies it
        env = {
            **slow_on(project, tmp_path, "nix", "*' copy '*"),
            "NIXFLY_SSH_CONFIG": str(sshd.ssh_config),
            "NIX_SSHOPTS": sshd.nix_sshopts(),
        }
        run = Run.start(project, tmp_path, "deploy", *FAST, "--target", f"ssh://{sshd.endpoint}", env=env)
        runs.append(run)
        run.in_step("copy", "sleep")
        run.interrupt()
        code, err = run.finish()
    assert_stopped_cleanly(project, run, "copy", code, err)


# --- the smoke tests' services when their own run is stopped ------------------------------------------------
@pytest.mark.parametrize("how", ["TERM to its group, as nixfly's runner", "Ctrl-C", "KILL to its session"])
def test_stopping_the_smoke_run_leaves_no_service(tmp_path, how):
    """tests/smoke started as nixfly's smoke step starts it (a session of its own); the services its tests
    launched must not outlive it, however it is stopped."""
    store = tmp_path / "store" / "0123456789abcdfghijklmnpqrsvwxyz-oneshot-integrated"
    (store / "bin").mkdir(parents=True)
    for name in ("start-oneshot", "web", "ai-server"):
        program = store / "bin" / name
        program.write_text(
            f'#!/bin/bash\nset -m\n{sys.executable} -c "import time; time.sleep({SLOW})" "$0.child" &\nwait\n'
        )
        program.chmod(0o755)
    pytest_run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "tests/smoke", "-q", "-p", "no:cacheprovider", "-k", "web_alone"],
        cwd=REPO,
        env={**os.environ, "NIXFLY_RESULT": str(store)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def ours() -> list[procs.Proc]:
        return [p for p in procs.table() if p.running and str(store) in p.cmdline]

    try:
        deadline = time.monotonic() + 60
        while not any(".child" in p.cmdline for p in ours()):
            assert pytest_run.poll() is None and time.monotonic() < deadline, "the smoke test never started"
            time.sleep(0.05)
        if how.startswith("TERM"):
            os.killpg(pytest_run.pid, signal.SIGTERM)
        elif how == "Ctrl-C":
            pytest_run.send_signal(signal.SIGINT)
        else:
            for p in procs.session(pytest_run.pid):
                os.kill(p.pid, signal.SIGKILL)
        pytest_run.wait(60)
        deadline = time.monotonic() + 10
        while ours() and time.monotonic() < deadline:  # a KILLed process takes a moment to be gone
            time.sleep(0.05)
        assert ours() == [], [p.cmdline for p in ours()]
    finally:
        if pytest_run.poll() is None:
            pytest_run.kill()
        for p in ours():
            os.kill(p.pid, signal.SIGKILL)
