"""nixfly.engine: the shared steps and the flow around a target's own, with a fake target and build host.

What the engine promises whatever the target: the order of the steps, reads starting only once the lock is
held, a failure handed to the target's recovery, a Ctrl-C never, a crash recorded as a failed step with
exit 70, and a dry-run that plans every step and changes nothing.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Callable
from typing import Any

import pytest
from helpers.fakes import PINNED, STORE, BuildHere, checkout, settings

from nixfly import engine, lock
from nixfly.config import Settings
from nixfly.engine import Engine
from nixfly.errors import BUG_EXIT, INTERRUPTED_EXIT, Interrupted, NixflyError, Stopped, WriteError
from nixfly.files import write_atomic
from nixfly.pipeline import Outcome, Pipeline, done, skipped
from nixfly.runner import here
from nixfly.smoke import remember
from nixfly.target import Candidate, Options, TargetSpec


class Target:
    """A target whose own steps are ``apply`` and ``verify``, each doing what the test says."""

    spec = TargetSpec("local")

    def __init__(self, s: Settings, apply=lambda: done("applied"), verify=lambda: done("healthy")) -> None:
        self.s = s
        self.apply, self.check = apply, verify
        self.events: list[object] = []
        self.candidate: Candidate | None = None

    def preflight(self, build, *, skip_build: bool) -> list[str]:
        self.events.append("preflight")
        return ["target ready"]

    def observe(self) -> None:
        # Reads start once the lock is held (outside a dry-run).
        held = lock.lock_path(self.s.state_dir, self.s.app).exists()
        self.events.append(("observe", "locked" if held else "unlocked"))

    def deploy_steps(self, candidate: Candidate, build):
        self.candidate = candidate
        return [("apply", lambda: self.apply()), ("verify", lambda: self.check())]

    def recover(self, pipeline: Pipeline, step: str, error: NixflyError) -> None:
        # The engine hands over every failure; the target decides what it undoes (here: its own steps).
        self.events.append(("recover", step, error.message))
        if step in ("apply", "verify"):
            pipeline.run_extra("rollback", lambda: done("previous release back"))
            error.add_note("rolled back")

    def interrupted(self, step: str) -> str:
        self.events.append(("interrupted", step))
        return f"stopped during {step}: nothing rolled back"

    def finish(self) -> None:
        self.events.append("finish")

    def label(self) -> str:
        return " on local"

    def deploy_command(self) -> str:
        return f"deploy --mode {self.s.mode.name} --target local"


@pytest.fixture
def s(tmp_path, monkeypatch) -> Settings:
    for name in ("CLAUDE_ACCESS_TOKEN", "GH_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "CURSOR_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)
    root = checkout(tmp_path / "checkout")
    (root / ".env").write_text("CLAUDE_ACCESS_TOKEN=canary-engine-1234\n")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where bug reports go
    return settings(root)


def run(s: Settings, target: Target, build: BuildHere | None = None, **options: bool) -> Pipeline:
    return Engine(s, here(s), Options(**options), target, build or BuildHere()).run()


def statuses(pipeline: Pipeline) -> list[tuple[str, str]]:
    return [(r.step, r.status) for r in pipeline.records]


def test_a_deploy_runs_the_shared_steps_then_the_targets(s):
    target, build = Target(s), BuildHere()
    pipeline = run(s, target, build)
    assert statuses(pipeline) == [
        ("preflight", "done"),
        ("lock", "done"),
        ("build", "done"),
        ("smoke", "done"),
        ("bundle", "done"),
        ("apply", "done"),
        ("verify", "done"),
    ]
    assert target.events == ["preflight", ("observe", "locked"), "finish"]
    assert build.asked == ["require_nix", "build oneshot-integrated result", f"smoke {STORE}"]
    # What the target's steps ship: the closure built (from the pinned source), the secrets bundled, and
    # the smoke result the receipt records.
    assert target.candidate == Candidate(
        STORE, PINNED, None, {"CLAUDE_ACCESS_TOKEN": "canary-engine-1234"}, "passed"
    )
    assert not lock.lock_path(s.state_dir, s.app).exists()  # released when done


def test_an_unchanged_closure_is_not_smoke_tested_twice(s):
    remember(s.state_dir, STORE)
    build = BuildHere()
    pipeline = run(s, Target(s), build)
    assert ("smoke", "skipped") in statuses(pipeline)
    assert f"smoke {STORE}" not in build.asked


def test_unchanged_credentials_skip_the_bundle(s):
    run(s, Target(s))
    pipeline = run(s, Target(s))
    assert ("bundle", "skipped") in statuses(pipeline)


def test_a_failed_step_hands_the_error_to_the_targets_recovery(s):
    def unhealthy() -> Outcome:
        raise NixflyError("checks not passing")

    target = Target(s, verify=unhealthy)
    with pytest.raises(NixflyError) as info:
        run(s, target)
    assert ("recover", "verify", "checks not passing") in target.events
    assert "finish" not in target.events
    assert info.value.notes == ["rolled back"] and info.value.exit_code == 1
    assert not lock.lock_path(s.state_dir, s.app).exists()


def test_a_record_that_cannot_be_written_is_never_rolled_back(s):
    """A full disk after a healthy verify: the target's recovery (a rollback) is not run, and the error
    says what was not recorded."""

    def healthy_but_unrecorded() -> Outcome:
        write_atomic(s.state_dir / "deployed-oneshot.json" / "x", "{}")  # a file where a directory must be
        return done("healthy")

    (s.state_dir).mkdir(parents=True, exist_ok=True)
    (s.state_dir / "deployed-oneshot.json").write_text("")
    target = Target(s, verify=healthy_but_unrecorded)
    with pytest.raises(WriteError) as info:
        run(s, target)
    assert not any(isinstance(e, tuple) and e[0] == "recover" for e in target.events)
    assert info.value.notes == [
        "nothing was rolled back: only nixfly's own record (x) was not written; what runs was not changed "
        "by that (a later deploy writes it again)"
    ]


@pytest.mark.parametrize(
    ("cause", "code", "by"),
    [(Stopped(signal.SIGTERM), 143, "SIGTERM"), (Stopped(signal.SIGHUP), 129, "SIGHUP")],
)
def test_term_and_hup_stop_as_ctrl_c_does(s, cause, code, by):
    def stopped() -> Outcome:
        raise cause

    target = Target(s, apply=stopped)
    with pytest.raises(Interrupted) as info:
        run(s, target)
    assert not any(e[0] == "recover" for e in target.events if isinstance(e, tuple))
    assert info.value.exit_code == code and info.value.message == f"interrupted by {by} during apply"
    assert not lock.lock_path(s.state_dir, s.app).exists()


def test_steps_after_a_failure_are_recorded_as_not_run(s, capsys):
    def broken() -> Outcome:
        raise NixflyError("flyctl deploy failed")

    with pytest.raises(NixflyError):
        Engine(s, here(s), Options(json_summary=True), Target(s, apply=broken), BuildHere()).run()
    summary = json.loads(capsys.readouterr().out)
    steps = [(r["step"], r["status"]) for r in summary["steps"]]
    assert steps[-3:] == [("apply", "failed"), ("rollback", "done"), ("verify", "not run")]
    assert summary["ok"] is False


def test_ctrl_c_never_rolls_back_and_says_what_is_live(s):
    def interrupted() -> Outcome:
        raise KeyboardInterrupt

    target = Target(s, apply=interrupted)
    with pytest.raises(Interrupted) as info:
        run(s, target)
    assert not any(e[0] == "recover" for e in target.events if isinstance(e, tuple))
    assert ("interrupted", "apply") in target.events
    assert info.value.exit_code == INTERRUPTED_EXIT
    assert info.value.notes == ["stopped during apply: nothing rolled back"]
    assert (
        info.value.hint
        == "run `inv deploy --mode integrated --target local` again: finished steps are skipped"
    )
    assert not lock.lock_path(s.state_dir, s.app).exists()


def test_a_crash_is_a_failed_step_with_exit_70_and_no_rollback(s, tmp_path, capsys):
    def crash() -> Outcome:
        raise KeyError("a bug in nixfly")

    target = Target(s, apply=crash)
    with pytest.raises(NixflyError) as info:
        Engine(s, here(s), Options(json_summary=True), target, BuildHere()).run()
    assert info.value.exit_code == BUG_EXIT
    assert not any(isinstance(e, tuple) and e[0] == "recover" for e in target.events)
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert [(r["step"], r["status"]) for r in steps][-2:] == [("apply", "failed"), ("verify", "not run")]
    assert steps[-2]["detail"].startswith("nixfly hit a bug in step apply (KeyError); the traceback is in ")
    [report] = tmp_path.glob("nixfly-crash-*.txt")
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    assert "a bug in nixfly" in report.read_text()


def test_a_dry_run_plans_every_step_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_ACCESS_TOKEN", raising=False)
    root = checkout(tmp_path / "checkout")
    (root / ".env").write_text("CLAUDE_ACCESS_TOKEN=canary-engine-1234\n")
    dry = settings(root, dry_run=True)
    target = Target(dry, apply=lambda: Outcome("planned", "would apply"))
    pipeline = run(dry, target)
    assert statuses(pipeline)[:5] == [
        ("preflight", "done"),
        ("lock", "planned"),
        ("build", "planned"),
        ("smoke", "planned"),
        ("bundle", "planned"),
    ]
    assert pipeline.records[1].detail == "would lock oneshot"
    assert target.events == ["preflight", ("observe", "unlocked")]  # read, but no finish
    assert not (root / ".env.fly").exists()
    assert not (root / ".nixfly").exists()


def test_skip_build_uses_the_existing_result_and_needs_no_nix(s):
    store = s.root.parent / "store" / "0123456789abcdfghijklmnpqrsvwxyz-x"
    store.mkdir(parents=True)
    s.out_link.symlink_to(store)
    target, build = Target(s), BuildHere(nix=False)
    pipeline = run(s, target, build, skip_build=True, skip_smoke=True)
    assert statuses(pipeline)[2:4] == [("build", "skipped"), ("smoke", "skipped")]
    assert pipeline.records[2].detail == f"--skip-build: using {store}"
    assert build.asked == []
    assert target.candidate is not None and target.candidate.store_path == str(store)
    assert target.candidate.smoke == "skipped (--skip-smoke)"  # what the receipt says vouched for it


def test_preflight_refuses_before_anything_changes(s):
    with pytest.raises(NixflyError, match="--skip-build but result does not exist"):
        run(s, Target(s), skip_build=True)
    with pytest.raises(NixflyError, match="nix not found"):
        run(s, Target(s), BuildHere(nix=False))
    broken = s.fly_config.read_text().replace('app = "oneshot"', "")
    s.fly_config.write_text(broken)
    target = Target(s)
    with pytest.raises(NixflyError, match=r"fly-integrated.toml: no `app` key"):
        run(s, target)
    assert "preflight" not in target.events  # not even the target's own checks ran
    assert not s.state_dir.exists()


def test_a_deploy_already_running_stops_at_the_lock(s):
    path = lock.lock_path(s.state_dir, s.app)
    s.state_dir.mkdir()
    holder = {"who": "x", "host": os.uname().nodename, "pid": os.getppid(), "since": "t"}
    path.write_text(json.dumps(holder))
    target = Target(s)
    with pytest.raises(NixflyError, match="another deploy of oneshot is running"):
        run(s, target)
    assert ("observe", "locked") not in target.events
    assert path.exists()  # the other deploy's lock is left alone


def test_deploy_opens_the_target_the_text_names(s):
    with pytest.raises(NixflyError, match="unknown target 'moon'"):
        engine.deploy(s, here(s), "moon", Options())
    with pytest.raises(NixflyError, match="--port applies to local and ssh:// targets"):
        engine.deploy(s, here(s), "fly", Options(), port=8080)


def test_skipped_steps_of_the_target_keep_the_deploy_ok(s):
    pipeline = run(s, Target(s, apply=lambda: skipped("already live")))
    assert pipeline.ok and ("apply", "skipped") in statuses(pipeline)


# --- the tasks that ask a target something (tasks.py: status, logs, stop, lock.*) ---------------------------
def ask(s: Settings, question: Callable[[Any], object], text: str = "fly") -> None:
    """A task body's question to ``--target text``, as tasks.py asks it: opened, asked, closed."""
    with engine.opened(s, here(s), text) as chosen:
        question(chosen)


def test_lock_status_and_release(tmp_path, capsys):
    s = settings(checkout(tmp_path))
    ask(s, lambda t: t.lock_status())
    assert capsys.readouterr().err == "oneshot: not locked\n"
    s.state_dir.mkdir()
    holder = {
        "who": "ci",
        "host": os.uname().nodename,
        "pid": os.getppid(),
        "since": "t",
        "command": "deploy",
    }
    lock.lock_path(s.state_dir, s.app).write_text(json.dumps(holder))
    ask(s, lambda t: t.lock_status())
    assert capsys.readouterr().err.startswith(
        f"oneshot: locked by ci@{os.uname().nodename} (pid {os.getppid()}"
    )
    ask(s, lambda t: t.lock_release(force=True))
    assert capsys.readouterr().err.startswith("oneshot: released lock of ci@")
    ask(s, lambda t: t.lock_release(force=False))
    assert capsys.readouterr().err == "oneshot: was not locked\n"


def test_a_stale_lock_says_how_to_remove_it(tmp_path, capsys):
    s = settings(checkout(tmp_path))
    s.state_dir.mkdir()
    holder = {"who": "ci", "host": os.uname().nodename, "pid": 2**22 + 7, "since": "t"}
    lock.lock_path(s.state_dir, s.app).write_text(json.dumps(holder))
    ask(s, lambda t: t.lock_status())
    assert "STALE lock" in capsys.readouterr().err


def test_the_target_a_task_opened_is_closed_afterwards(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-flyctl-here"))  # the reads fail at once, run nothing
    s = settings(checkout(tmp_path))
    with pytest.raises(NixflyError, match="flyctl not found"), engine.opened(s, here(s), "fly") as chosen:
        chosen.observe()  # waits for the login read, which fails: the task fails
    assert chosen.observed is not None and chosen.observed._pool._shutdown  # type: ignore[attr-defined]


def test_a_host_targets_lock_is_shown_and_released_by_the_target(tmp_path, capsys):
    """``--target local`` answers lock.status and lock.release itself: a table row, a refusal, a release."""
    s = settings(checkout(tmp_path))
    ask(s, lambda t: t.lock_status(), "local")
    assert "| local | free |" in capsys.readouterr().err.replace("  ", " ")
    holder = engine.open_target(s, here(s), "local")
    try:
        holder.claim("deploy --mode integrated --target local", "abc1234")
        ask(s, lambda t: t.lock_status(), "local")
        assert "held" in capsys.readouterr().err
        with pytest.raises(NixflyError, match=r"^kept the lock: "):
            ask(s, lambda t: t.lock_release(force=False), "local")
        ask(s, lambda t: t.lock_release(force=True), "local")
        assert "oneshot on local: released the lock of " in capsys.readouterr().err
    finally:
        holder.close()
    ask(s, lambda t: t.lock_release(force=False), "local")
    assert capsys.readouterr().err.endswith("\noneshot on local: was not locked\n")
