"""The Fly health gate as Fly really behaves ("Real Fly, not our simulator"): machines the proxy stopped for
being idle are healthy, a release whose started machines fail or crash is rolled back, and a health URL
answering from an old image is not this release answering. `inv deploy --json` in a subprocess, against the
flyctl simulator with its proxy (autostop) and health server."""

from __future__ import annotations

import json

import pytest
from flyctl_sim import control

FAST = ("--skip-build", "--skip-smoke")
APP = "oneshot-ai-providers"


def deploy(project, *extra):
    result = project.inv("deploy", "--mode", "ai-server-only", *FAST, "--json", *extra)
    return result, json.loads(result.stdout)


def step(summary, name):
    return next(s for s in reversed(summary["steps"]) if s["step"] == name)


def release_versions(project):
    return sorted(m["config"]["metadata"]["fly_release_version"] for m in control.machines(project.sim, APP))


def test_deploy_and_redeploy_pass_with_a_machine_stopped_by_autostop(project, fake_result):
    control.set_autostop(project.sim, APP)
    first, summary = deploy(project)
    assert first.returncode == 0, first.stderr
    # The HA pair, of which the proxy stopped one (min_machines_running = 1): that is a healthy app.
    assert sorted(control.machine_states(project.sim, APP).values()) == ["started", "stopped"]
    verify = step(summary, "verify")
    assert verify["status"] == "done" and "1 stopped by autostop (fine)" in verify["detail"]
    assert verify["table"]["rows"] == [
        {
            "region": "iad",
            "machines": 2,
            "state": "1 started, 1 stopped",
            "version": "v1",
            "checks": "1/1 passing",
        }
    ]

    again, summary = deploy(project, "--force")
    assert again.returncode == 0, again.stderr
    assert step(summary, "deploy")["status"] == "done" and step(summary, "verify")["status"] == "done"
    assert "rollback" not in [s["step"] for s in summary["steps"]]
    # flyctl updated the stopped machine in place and left it stopped: both carry the new release.
    assert release_versions(project) == ["2", "2"]
    assert sorted(control.machine_states(project.sim, APP).values()) == ["started", "stopped"]


@pytest.mark.parametrize(("health", "failed_step"), [("fail", "deploy"), ("crash", "deploy")])
def test_started_machines_failing_their_checks_are_rolled_back(project, fake_result, health, failed_step):
    control.set_autostop(project.sim, APP)
    first, _ = deploy(project)
    assert first.returncode == 0, first.stderr
    good = control.current_release(project.sim, APP)
    assert good is not None

    control.set_health_plan(project.sim, APP, [health])
    result, summary = deploy(project, "--force")
    assert result.returncode == 1
    assert step(summary, failed_step)["status"] == "failed"
    assert step(summary, "rollback")["status"] == "done"
    assert "rolled back to v1" in result.stderr
    live = control.current_release(project.sim, APP)
    assert live is not None and live["image_ref"] == good["image_ref"]
    # The rollback reached both machines, the stopped one too, and the app answers again.
    assert release_versions(project) == [str(live["version"])] * 2
    assert control.app_healthy(project.sim, APP) is True


def test_a_health_url_answering_from_a_stale_image_fails_verify(project, fake_result):
    first, _ = deploy(project)
    assert first.returncode == 0, first.stderr
    old = control.current_release(project.sim, APP)
    assert old is not None
    control.serve_stale(project.sim, APP, old["image_ref"])

    result, summary = deploy(project, "--force")
    assert result.returncode == 1
    verify = step(summary, "verify")
    assert verify["status"] == "failed"
    assert f"from release '{old['image_ref']}', not the expected" in verify["detail"]
    # Fly's own checks passed on v2: only the identity in /health told the gate it was not v2 answering.
    assert step(summary, "deploy")["status"] == "done"
    assert step(summary, "rollback")["status"] == "done"
    live = control.current_release(project.sim, APP)
    assert live is not None and live["image_ref"] == old["image_ref"]
