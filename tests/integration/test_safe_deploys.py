"""Safe deploys: health gate and rollback, the deploy lock, the fault matrix (a flyctl failure at each step),
and the health gate's identity check: it must know it talks to the release it just started.

Ctrl-C at every step is test_interrupts.py's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from flyctl_sim import control
from helpers import tinyapps
from helpers.procs import free_port
from helpers.project import REPO, require
from helpers.sshd import kill_session, nix_build

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


# --- the health gate knows whom it talks to -----------------------------------------------------------------
def test_fly_verify_refuses_an_answer_from_the_previous_release(project, fake_result):
    """Fly's proxy still routing /health to a machine on v1 is not v2 being healthy."""
    deploy_ok(project)
    v1 = live_image(project)
    control.serve_stale(project.sim, "oneshot", v1)
    result = project.inv("deploy", *FAST, "--force")
    assert result.returncode == 1, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")][-1]
    assert f"from release {v1!r}, not the expected" in error
    assert "rolled back to v1" in error
    assert live_image(project) == v1


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    require("nix")
    built = tinyapps.build(tmp_path_factory.mktemp("tinyapps"))
    yield built
    built.kill_all()


@pytest.fixture
def local(project, apps):
    """The project deploying tiny apps to `--target local`; everything they started is killed afterwards."""
    port = free_port()
    tinyapps.use_local(project, port=port)
    try:
        yield port
    finally:
        kill_session(tinyapps.pidfile(project))
        apps.kill_all()


def local_error(result):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    return line


def test_a_stranger_on_the_port_is_refused_before_anything_starts(project, apps, local, tmp_path):
    stranger = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(local), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: http_status(f"http://127.0.0.1:{local}/") == 200, what="the stranger")
        line = local_error(tinyapps.deploy_local(project, apps["ok"]))
        assert f"port {local} on local is in use by a program nixfly did not start" in line
        assert stranger.poll() is None, "the stranger is left alone"
        assert not tinyapps.pidfile(project).exists(), "nothing was started"
        assert not (project.root / ".nixfly" / "local" / "oneshot" / "profile").exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_the_previous_release_still_answering_is_not_the_new_one(project, apps, local):
    """v1 does not let go of its port when stopped; v2 runs but never listens. Every answer on the port names
    v1's release id: the gate must not call v2 healthy."""
    assert tinyapps.deploy_local(project, apps["lingering"]).returncode == 0
    v1 = tinyapps.live(project)
    line = local_error(tinyapps.deploy_local(project, apps["deaf"]))
    assert f"from release {v1['release_id']!r}, not the expected" in line
    assert tinyapps.live(project)["generation"] == v1["generation"], "v2 was never recorded as live"


def test_the_other_process_of_the_same_release_is_not_the_service(project, apps, local):
    """The answer names the new release but the wrong program (the ai-server on the web's port)."""
    assert tinyapps.deploy_local(project, apps["ok"]).returncode == 0
    v1 = tinyapps.live(project)
    line = local_error(tinyapps.deploy_local(project, apps["other"]))
    assert "from service 'ai-server', not the expected 'web'" in line
    assert f"restored the previous release, generation {v1['generation']}" in line
    assert (
        json.loads(http_body(f"http://127.0.0.1:{local}/health"))["release"]
        == tinyapps.live(project)["release_id"]
    )


@pytest.fixture(scope="module")
def oneshot(tmp_path_factory):
    """The repository's real closure (web + ai-server under start-oneshot)."""
    return nix_build(str(REPO), ["oneshot-integrated"], tmp_path_factory.mktemp("oneshot") / "result")[0]


def test_deploying_on_the_ai_servers_own_port_fails_and_restores(project, oneshot):
    """The issue's example: `--port` is the ai-server's port. The ai-server answers /health there (it is the
    new release, but not the web), web dies of EADDRINUSE; the gate must fail it and bring v1 back."""
    web, ai = free_port(), free_port()
    toml = (REPO / "fly-integrated.toml").read_text()
    toml = toml.replace('AI_SERVER_PORT = "3000"', f'AI_SERVER_PORT = "{ai}"')
    toml = toml.replace("http://127.0.0.1:3000", f"http://127.0.0.1:{ai}")
    (project.root / "fly-integrated.toml").write_text(toml)
    yaml = (project.root / "invoke.yaml").read_text()
    (project.root / "invoke.yaml").write_text(yaml.replace("    timeout: 6\n", "    timeout: 60\n"))
    try:
        first = tinyapps.deploy_local(project, oneshot, "--port", str(web))
        assert first.returncode == 0, first.stderr
        v1 = tinyapps.live(project)
        line = local_error(tinyapps.deploy_local(project, oneshot, "--port", str(ai), "--force"))
        assert f"restored the previous release, generation {v1['generation']}" in line
        health = json.loads(http_body(f"http://127.0.0.1:{web}/health"))
        assert health["service"] == "web" and health["release"] == tinyapps.live(project)["release_id"]
    finally:
        kill_session(tinyapps.pidfile(project))


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except (urllib.error.URLError, OSError):
        return None


def http_body(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()
