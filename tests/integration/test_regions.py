"""Machines per Fly region: `inv deploy` converging to a mode's declared regions, `inv scale` by hand, the
refusal to strand volumes, a failed release rolled back on every machine, and bad input refused before
anything changes. Run as a user runs them (`inv … --json` in a subprocess) against the flyctl simulator."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from flyctl_sim import control
from helpers import procs

FAST = ("--skip-build", "--skip-smoke")
# flyctl commands that change something on Fly.
CHANGES = {
    "apps create",
    "volumes create",
    "volumes destroy",
    "secrets import",
    "deploy",
    "scale count",
    "machine destroy",
}


def declare(project, regions: str, mode: str = "integrated") -> None:
    """nixfly.modes.<mode>.regions in the checkout's invoke.yaml (flow style, e.g. "{iad: 2, ams: 1}")."""
    path = project.root / "invoke.yaml"
    text = path.read_text()
    assert f"    {mode}:\n" in text
    path.write_text(text.replace(f"    {mode}:\n", f"    {mode}:\n      regions: {regions}\n"))


def run_json(project, *args):
    result = project.inv(*args, "--json")
    return result, json.loads(result.stdout)


def step(summary, name):
    return next(s for s in reversed(summary["steps"]) if s["step"] == name)


def table(step_record):
    return {row["region"]: row for row in step_record["table"]["rows"]}


def changes_since(project, before):
    return [c for c in project.commands()[before:] if c in CHANGES]


def machines_per_region(project, app="oneshot"):
    found: dict[str, int] = {}
    for machine in control.machines(project.sim, app):
        found[machine["region"]] = found.get(machine["region"], 0) + 1
    return found


def live_volumes(project, app="oneshot"):
    """What `fly volumes list` shows (a destroyed volume is gone from it)."""
    return [v for v in control.volumes(project.sim, app) if v["state"] == "created"]


def test_deploy_converges_to_the_declared_regions_and_a_second_run_creates_nothing(project, fake_result):
    declare(project, "{iad: 2, ams: 1}")
    result, summary = run_json(project, "deploy", "--mode", "integrated", *FAST)
    assert result.returncode == 0, result.stderr
    assert [s["step"] for s in summary["steps"]][5:8] == ["diff", "regions", "app"]
    assert [s["step"] for s in summary["steps"]][-3:] == ["verify", "scale", "receipt"]
    scaled = step(summary, "scale")
    assert scaled["status"] == "done"
    rows = table(scaled)
    assert {region: row["machines"] for region, row in rows.items()} == {"ams": 1, "iad": 2}
    assert {row["version"] for row in rows.values()} == {"v1"}
    assert rows["iad"]["checks"] == "2/2 passing" and rows["ams"]["checks"] == "1/1 passing"

    # What Fly has: the machines, and a volume of its own for each, in the machine's region.
    assert machines_per_region(project) == {"iad": 2, "ams": 1}
    volumes = live_volumes(project)
    machines = {m["id"]: m for m in control.machines(project.sim, "oneshot")}
    assert sorted(v["attached_machine_id"] for v in volumes) == sorted(machines)
    assert all(machines[v["attached_machine_id"]]["region"] == v["region"] for v in volumes)
    scale_calls = [c["argv"] for c in project.flyctl_calls() if c.get("command") == "scale count"]
    assert [(a[2], a[a.index("--region") + 1]) for a in scale_calls] == [("2", "iad"), ("1", "ams")]

    before = len(project.flyctl_calls())
    again, summary = run_json(project, "deploy", "--mode", "integrated", *FAST)
    assert again.returncode == 0, again.stderr
    assert step(summary, "regions")["status"] == "skipped"
    assert step(summary, "scale")["status"] == "skipped"
    assert changes_since(project, before) == [], "a second run must create no machine and no volume"
    assert len(live_volumes(project)) == 3

    status = project.inv("status", "--json")
    assert status.returncode == 0, status.stderr
    regions = {row["region"]: row for row in json.loads(status.stdout)["regions"]}
    assert {r: row["machines"] for r, row in regions.items()} == {"ams": 1, "iad": 2}
    assert {row["state"] for row in regions.values()} == {"1 started", "2 started"}


def test_dry_run_of_a_new_app_shows_per_region_what_would_be_created(project, fake_result):
    declare(project, "{iad: 2, ams: 1}")
    result, summary = run_json(project, "deploy", "--dry-run", *FAST)
    assert result.returncode == 0, result.stderr
    regions = step(summary, "regions")
    assert regions["status"] == "planned"
    rows = table(regions)  # from what the first deploy makes: one machine on its volume in iad
    assert (rows["iad"]["now"], rows["iad"]["wanted"], rows["iad"]["new_volumes"]) == (1, 2, 1)
    assert (rows["ams"]["now"], rows["ams"]["wanted"], rows["ams"]["new_volumes"]) == (0, 1, 1)
    assert step(summary, "scale")["status"] == "planned"
    assert [c for c in project.commands() if c in CHANGES] == [] and control.apps(project.sim) == []


def test_regions_with_autostop_are_healthy_with_machines_the_proxy_stopped(project, fake_result):
    declare(project, "{iad: 2, ams: 1}")
    control.set_autostop(project.sim, "oneshot")
    result, summary = run_json(project, "deploy", *FAST)
    assert result.returncode == 0, result.stderr
    # min_machines_running = 1 counts in the primary region; elsewhere the proxy stops every idle machine
    rows = table(step(summary, "scale"))
    assert rows["iad"]["state"] == "1 started, 1 stopped" and rows["ams"]["state"] == "1 stopped"
    assert machines_per_region(project) == {"iad": 2, "ams": 1}


def test_scale_by_hand_then_a_shrink_that_strands_a_volume_needs_destroy_volumes(project, fake_result):
    first = project.inv("deploy", *FAST)
    assert first.returncode == 0, first.stderr
    assert machines_per_region(project) == {"iad": 1}

    before = len(project.flyctl_calls())
    dry, summary = run_json(project, "scale", "iad=2,ams=1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    plan = table(step(summary, "plan"))
    assert (plan["iad"]["now"], plan["iad"]["wanted"], plan["iad"]["new_volumes"]) == (1, 2, 1)
    assert (plan["ams"]["now"], plan["ams"]["wanted"], plan["ams"]["new_volumes"]) == (0, 1, 1)
    assert changes_since(project, before) == [] and machines_per_region(project) == {"iad": 1}

    grown, summary = run_json(project, "scale", "iad=2,ams=1")
    assert grown.returncode == 0, grown.stderr
    assert step(summary, "apply")["status"] == "done"
    assert {r: row["machines"] for r, row in table(step(summary, "verify")).items()} == {"ams": 1, "iad": 2}
    assert machines_per_region(project) == {"iad": 2, "ams": 1} and len(live_volumes(project)) == 3

    before = len(project.flyctl_calls())
    again, summary = run_json(project, "scale", "iad=2,ams=1")
    assert again.returncode == 0, again.stderr
    assert [step(summary, s)["status"] for s in ("plan", "apply")] == ["skipped", "skipped"]
    assert changes_since(project, before) == []

    ams_machine = next(m["id"] for m in control.machines(project.sim, "oneshot") if m["region"] == "ams")
    ams_volume = next(v["id"] for v in live_volumes(project) if v["attached_machine_id"] == ams_machine)
    refused, summary = run_json(project, "scale", "ams=0")
    assert refused.returncode == 1
    error = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and ams_volume in error[0] and "--destroy-volumes" in error[0]
    assert step(summary, "plan")["status"] == "failed" and step(summary, "apply")["status"] == "not run"
    assert changes_since(project, before) == [] and machines_per_region(project) == {"iad": 2, "ams": 1}

    # Fly unbinds a destroyed machine's volume later (terraform-provider-fly #154, #218): here, after two
    # more volume reads. The plan names the machines and volumes that go; afterwards exactly those are gone.
    control.set_unbind_delay(project.sim, "oneshot", 2)
    machines_before = {m["id"] for m in control.machines(project.sim, "oneshot")}
    volumes_before = {v["id"] for v in live_volumes(project)}
    shrunk, summary = run_json(project, "scale", "iad=1,ams=0", "--destroy-volumes")
    assert shrunk.returncode == 0, shrunk.stderr
    plan = table(step(summary, "plan"))
    assert plan["ams"]["remove"] == [ams_machine] and plan["ams"]["free_volumes"] == [ams_volume]
    named_machines = {*plan["iad"]["remove"], *plan["ams"]["remove"]}
    named_volumes = {*plan["iad"]["free_volumes"], *plan["ams"]["free_volumes"]}
    assert len(named_machines) == 2 and len(named_volumes) == 2
    assert machines_before - {m["id"] for m in control.machines(project.sim, "oneshot")} == named_machines
    remaining = live_volumes(project)
    assert volumes_before - {v["id"] for v in remaining} == named_volumes
    assert len(remaining) == 1 and all(v["attached_machine_id"] for v in remaining)
    assert machines_per_region(project) == {"iad": 1}
    destroyed = [c["argv"] for c in project.flyctl_calls() if c.get("command") == "volumes destroy"]
    assert {a[2] for a in destroyed} == named_volumes  # each once, after the wait, never refused


def test_deploy_refuses_a_declared_shrink_that_strands_volumes_before_changing_anything(project, fake_result):
    declare(project, "{iad: 2, ams: 1}")
    assert project.inv("deploy", *FAST).returncode == 0
    (project.root / ".env").write_text("CLAUDE_ACCESS_TOKEN=rotated-0001\nGH_TOKEN=canary-gh-2b8d4e6f\n")
    yaml = project.root / "invoke.yaml"
    yaml.write_text(yaml.read_text().replace("{iad: 2, ams: 1}", "{iad: 2}"))
    before = len(project.flyctl_calls())
    result, summary = run_json(project, "deploy", *FAST)
    assert result.returncode == 1
    assert step(summary, "regions")["status"] == "failed"
    assert "ams=0 --destroy-volumes" in result.stderr
    assert changes_since(project, before) == []  # not even the rotated secret
    assert machines_per_region(project) == {"iad": 2, "ams": 1}


def test_machines_without_volumes_shrink_freely(project, fake_result):
    declare(project, "{iad: 1, ams: 1}", mode="ai-server-only")
    result, summary = run_json(project, "deploy", "--mode", "ai-server-only", *FAST)
    assert result.returncode == 0, result.stderr
    # fly deploy made its HA pair in iad; converging removed one and added ams's
    assert machines_per_region(project, "oneshot-ai-providers") == {"iad": 1, "ams": 1}
    detail = step(summary, "scale")["detail"]
    assert "iad 2→1" in detail and "created 1 machine(s), 0 volume(s); removed 1 machine(s)" in detail
    assert control.volumes(project.sim, "oneshot-ai-providers") == []


def test_scaling_an_app_to_no_machine_at_all(project, fake_result):
    assert project.inv("deploy", "--mode", "ai-server-only", *FAST).returncode == 0
    result, summary = run_json(project, "scale", "--mode", "ai-server-only", "iad=0")
    assert result.returncode == 0, result.stderr
    assert step(summary, "apply")["detail"] == "created 0 machine(s), 0 volume(s); removed 2 machine(s)"
    assert step(summary, "verify")["detail"] == "no machines, as asked"
    assert control.machines(project.sim, "oneshot-ai-providers") == []


@pytest.mark.parametrize("strategy", ["immediate", "rolling"])
def test_a_failing_release_over_three_machines_is_rolled_back_on_all_three(project, fake_result, strategy):
    declare(project, "{iad: 2, ams: 1}")
    assert project.inv("deploy", *FAST).returncode == 0
    good = control.current_release(project.sim, "oneshot")
    assert good is not None and machines_per_region(project) == {"iad": 2, "ams": 1}

    control.set_health_plan(project.sim, "oneshot", ["fail"])
    result, summary = run_json(project, "deploy", *FAST, "--force", "--strategy", strategy)
    assert result.returncode == 1
    assert "rolled back to v1" in result.stderr
    rollback = step(summary, "rollback")
    assert rollback["status"] == "done"
    live = control.current_release(project.sim, "oneshot")
    assert live is not None and live["image_ref"] == good["image_ref"] and live["version"] == 3
    rows = table(rollback)
    assert {r: row["machines"] for r, row in rows.items()} == {"ams": 1, "iad": 2}
    assert {row["version"] for row in rows.values()} == {"v3"}
    # Every machine, in both regions, runs the good image again as the rollback's release.
    machines = control.machines(project.sim, "oneshot")
    assert len(machines) == 3
    assert {m["config"]["image"] for m in machines} == {good["image_ref"]}
    assert {m["config"]["metadata"]["fly_release_version"] for m in machines} == {"3"}
    assert control.app_healthy(project.sim, "oneshot") is True
    bad = next(r for r in control.releases(project.sim, "oneshot") if r["version"] == 2)
    assert bad["image_ref"] != good["image_ref"]
    assert step(summary, "scale")["status"] == "not run"


def test_ctrl_c_during_scale_releases_the_lock_and_running_again_converges(project, fake_result):
    assert project.inv("deploy", *FAST).returncode == 0
    control.set_delay(project.sim, "scale count", 30)
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "scale", "iad=2,ams=1"],
        cwd=project.root,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any("flyctl scale count" in p.cmdline for p in procs.table() if p.running):
        if time.monotonic() > deadline or proc.poll() is not None:
            pytest.fail("flyctl scale count never started")
        time.sleep(0.05)
    time.sleep(0.3)  # let nixfly hold the child's handle (see test_safe_deploys' Ctrl-C matrix)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted during apply" in err and "Traceback" not in err
    assert not (project.root / ".nixfly" / "deploy-oneshot.lock").exists()
    control.set_delay(project.sim, "scale count", 0)
    again = project.inv("scale", "iad=2,ams=1")
    assert again.returncode == 0, again.stderr
    assert machines_per_region(project) == {"iad": 2, "ams": 1}


def refused_before_anything(project, result, *needles):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert [c for c in project.commands() if c in CHANGES] == []
    assert control.apps(project.sim) == []
    assert not (project.root / ".nixfly" / "deploy-oneshot.lock").exists()


@pytest.mark.parametrize(
    ("regions", "needle"),
    [
        ("{xyz: 1}", "Fly has no region xyz"),
        ("{iad: -1}", "regions.iad: -1 is not a number of machines"),
        ("{iad: x}", "regions.iad: 'x' is not a number of machines"),
        ("{IAD: 1}", "'IAD' is not a Fly region code"),
        ("{ams: 2}", "the primary region iad would have no machine"),
    ],
)
def test_deploy_refuses_bad_declared_regions(project, fake_result, regions, needle):
    declare(project, regions)
    refused_before_anything(project, project.inv("deploy", *FAST), needle)


@pytest.mark.parametrize(
    ("counts", "needle"),
    [
        ("xyz=1", "Fly has no region xyz"),
        ("iad=-1", "iad=-1: the count must be a whole number"),
        ("iad=x", "iad=x: the count must be a whole number"),
        ("iad=1,iad=2", "region iad is given twice"),
        ("iad", "'iad' is not REGION=COUNT"),
    ],
)
def test_scale_refuses_bad_counts(project, fake_result, counts, needle):
    refused_before_anything(project, project.inv("scale", counts), needle)
