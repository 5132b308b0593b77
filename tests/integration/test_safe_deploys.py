"""Safe deploys: health gate and rollback, the deploy lock, Ctrl-C at any step, and the fault matrix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flyctl_sim import control

FAST = ("--skip-build", "--skip-smoke")
MUTATING = {"apps create", "volumes create", "secrets import", "secrets set", "deploy"}


def live_image(project, app="oneshot"):
    release = control.current_release(project.sim, app)
    assert release is not None
    return release["image_ref"]


def deploy_ok(project, *extra):
    result = project.inv("deploy", *FAST, *extra)
    assert result.returncode == 0, result.stderr
    return result


def rotate_secret(project, value):
    """Change .env so the next deploy has real work (a secret to stage, a new release to make)."""
    (project.root / ".env").write_text(f"CLAUDE_ACCESS_TOKEN={value}\nGH_TOKEN=canary-gh-2b8d4e6f\n")


def test_unhealthy_release_is_rolled_back_and_the_exit_is_non_zero(project, fake_result):
    deploy_ok(project)
    good = live_image(project)
    control.set_health_plan(project.sim, "oneshot", ["fail"])
    result = project.inv("deploy", *FAST, "--force")
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")][-1]
    assert "health checks" in error and "rolled back to v1" in error and "inv logs" in error
    assert live_image(project) == good
    assert control.app_healthy(project.sim, "oneshot") is True
    statuses = [r["status"] for r in control.releases(project.sim, "oneshot")]
    assert statuses[:2] == ["complete", "failed"] or statuses[0] == "complete"
    rollback = [c for c in project.flyctl_calls() if c.get("command") == "deploy"][-1]["argv"]
    assert rollback[rollback.index("--image") + 1] == good
    assert rollback[rollback.index("--strategy") + 1] == "immediate"
    assert "rollback" in result.stderr  # the summary lists the rollback step


def test_first_deploy_unhealthy_says_there_is_nothing_to_roll_back_to(project, fake_result):
    control.set_health_plan(project.sim, "oneshot", ["fail"])
    result = project.inv("deploy", *FAST)
    assert result.returncode == 1
    assert "nothing to roll back to" in result.stderr


def test_no_rollback_leaves_the_bad_release_and_says_how_to_undo(project, fake_result):
    deploy_ok(project)
    control.set_health_plan(project.sim, "oneshot", ["fail"])
    result = project.inv("deploy", *FAST, "--force", "--no-rollback")
    assert result.returncode == 1
    assert "automatic rollback is off" in result.stderr and "inv rollback" in result.stderr
    assert control.app_healthy(project.sim, "oneshot") is False


def test_http_health_gate_catches_what_fly_checks_miss(project, fake_result):
    deploy_ok(project)
    yaml = (project.root / "invoke.yaml").read_text()
    (project.root / "invoke.yaml").write_text(yaml.replace("/{app}/health", "/{app}/missing"))
    result = project.inv("deploy", *FAST, "--force")
    assert result.returncode == 1
    assert "404" in result.stderr and "rollback to v1 FAILED too" in result.stderr


def test_inv_rollback_goes_back_one_release_or_to_a_version(project, fake_result):
    deploy_ok(project)
    v1 = live_image(project)
    deploy_ok(project, "--force")
    v2 = live_image(project)
    assert v1 != v2
    result = project.inv("rollback")
    assert result.returncode == 0, result.stderr
    assert live_image(project) == v1
    result = project.inv("rollback", "--to", "2")
    assert result.returncode == 0, result.stderr
    assert live_image(project) == v2
    missing = project.inv("rollback", "--to", "99")
    assert missing.returncode == 1 and "no release v99" in missing.stderr


def start_deploy(project, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", "deploy", *FAST, *extra],
        cwd=project.root,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def flyctl_running(command):
    """Whether a simulated flyctl running ``command`` (e.g. "volumes create") is alive right now."""
    words = command.split()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(a.endswith("flyctl") for a in argv) and all(w in argv for w in words):
            return True
    return False


def test_two_deploys_at_once_one_runs_the_other_names_the_holder(project, fake_result):
    control.set_delay(project.sim, "deploy", 3)
    first = start_deploy(project)
    wait_for(lambda: (project.root / ".nixfly" / "deploy-oneshot.lock").exists(), what="the lock")
    second = project.inv("deploy", *FAST)
    assert second.returncode == 1
    assert "another deploy of oneshot is running: lock held by" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert not (project.root / ".nixfly" / "deploy-oneshot.lock").exists()


def test_stale_lock_is_reported_and_replaced(project, fake_result):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = project.root / ".nixfly" / "deploy-oneshot.lock"
    lock.parent.mkdir()
    lock.write_text(
        f'{{"who": "ghost", "host": "{os.uname().nodename}", "pid": {dead.pid}, "since": "then"}}'
    )
    assert "STALE" in project.inv("lock.status").stderr
    result = deploy_ok(project)
    assert "stale deploy lock" in result.stderr
    assert not lock.exists()


# --- the fault matrix ---------------------------------------------------------------------------------------
# step name in the summary, flyctl command it runs, whether a release exists when it fails (→ rollback).
# A flyctl that keeps failing `checks list` also fails the rollback's verification: the error says so.
MATRIX = [
    ("app", "apps create", False),
    ("volume", "volumes create", False),
    ("secrets", "secrets import", False),
    ("release", "releases", False),
    ("deploy", "deploy", True),
    ("verify", "checks list", True),
]
OUTCOME = {"deploy": "rolled back to v1", "verify": "rollback to v1 FAILED too"}


def fresh_app_needed(step):
    return step in ("app", "volume")


def arrange(project, step, secret):
    """A healthy v1 (unless the step only runs for a new app), then a change so every step has work."""
    if fresh_app_needed(step):
        return
    deploy_ok(project)
    rotate_secret(project, secret)


@pytest.mark.parametrize(("step", "command", "released"), MATRIX, ids=[m[0] for m in MATRIX])
def test_fault_matrix_flyctl_failure(project, fake_result, step, command, released):
    arrange(project, step, "rotated-after-fault")
    good = live_image(project) if not fresh_app_needed(step) else None
    control.inject_fault(
        project.sim,
        command,
        times=-1 if command != "deploy" else 1,
        message=f"Error: injected {command} failure",
        after_effect=released,
    )
    result = project.inv("deploy", *FAST)
    assert result.returncode == 1, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")][-1]
    assert f"injected {command} failure" in error
    assert f"| {step}" in result.stderr.replace("| " + step + " ", "| " + step)  # the summary names the step
    assert not (project.root / ".nixfly" / "deploy-oneshot.lock").exists()
    assert [p for p in project.root.rglob("*.tmp") if ".git" not in p.parts] == []
    if released and good:
        assert OUTCOME[step] in error
        assert live_image(project) == good
    control.clear_faults(project.sim)
    before = len(project.flyctl_calls())
    again = project.inv("deploy", *FAST)
    assert again.returncode == 0, again.stderr
    imports = [c for c in project.commands()[before:] if c == "secrets import"]
    staged_before = step not in ("app", "volume", "secrets")
    assert imports == ([] if staged_before else ["secrets import"]), "secrets must not be staged twice"


@pytest.mark.parametrize(("step", "command", "released"), MATRIX, ids=[m[0] for m in MATRIX])
def test_fault_matrix_ctrl_c(project, fake_result, step, command, released):
    arrange(project, step, "rotated-before-ctrl-c")
    control.set_delay(project.sim, command, 30)
    proc = start_deploy(project)
    wait_for(lambda: flyctl_running(command), what=f"flyctl {command}")
    # The child shows in /proc a moment before Popen returns in nixfly; a Ctrl-C inside that window
    # (microseconds for a person at a keyboard) cannot be attributed to the child. Let nixfly get its handle.
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "again" in err
    assert "Traceback" not in err
    wait_for(lambda: not flyctl_running(command), timeout=15, what="flyctl to be stopped")
    assert not (project.root / ".nixfly" / "deploy-oneshot.lock").exists()
    assert [p for p in project.root.rglob("*.tmp") if ".git" not in p.parts] == []
    control.set_delay(project.sim, command, 0)
    again = project.inv("deploy", *FAST)
    assert again.returncode == 0, again.stderr
