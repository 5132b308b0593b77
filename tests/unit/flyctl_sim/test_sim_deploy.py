"""``fly deploy``: output, release JSON line, images, config errors, releases and logs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from flyctl_sim import control
from helpers.sim import APP, HTTP_CHECKS, IMAGE, IMAGE2, fails, groups, ok, write_toml


def error_part(stderr: str) -> str:
    """flyctl prints progress on stderr before the error: the text from ``Error:`` on."""
    return stderr[stderr.index("Error:") :]


def test_healthy_deploy_shapes(home: Path, deployed: Path) -> None:
    (release,) = control.releases(home, APP)
    assert release["status"] == "complete" and release["image_ref"] == IMAGE and release["version"] == 1
    machines = control.machines(home, APP)
    assert len(machines) == 2  # the HA pair: a service, no mount
    machine = machines[0]
    assert re.fullmatch(r"[0-9a-f]{14}", machine["id"])
    assert machine["config"]["env"]["MODE"] == "prod"
    assert machine["config"]["env"]["PRIMARY_REGION"] == "ord"
    assert machine["config"]["metadata"]["fly_process_group"] == "app"
    assert machine["config"]["metadata"]["fly_release_version"] == "1"
    assert machine["region"] == "ord" and "_sim" not in machine
    (service,) = machine["config"]["services"]
    assert service["internal_port"] == 8080 and service["checks"][0]["path"] == "/health"
    checks = json.loads(ok(home, "checks", "list", "-a", APP, "-j"))
    assert list(checks) == sorted(m["id"] for m in machines)
    assert [c["status"] for c in checks[machine["id"]]] == ["passing"]
    assert checks[machine["id"]][0]["name"] == "servicecheck-00-http-8080"
    status = json.loads(ok(home, "status", "-a", APP, "-j"))
    assert set(status) == {
        "AppURL",
        "Deployed",
        "Hostname",
        "ID",
        "Machines",
        "Name",
        "Organization",
        "PlatformVersion",
        "Status",
        "Version",
    }
    assert status["Version"] == 1 and status["Deployed"] is True
    listed = json.loads(ok(home, "machines", "ls", "-a", APP, "--json"))
    assert {
        "id",
        "name",
        "state",
        "region",
        "image_ref",
        "private_ip",
        "created_at",
        "config",
        "checks",
    } <= set(listed[0])
    assert listed[0]["image_ref"]["repository"] == "sim-app" and listed[0]["image_ref"]["tag"] == "v1"
    ok(home, "deploy", cwd=deployed)  # a second deploy updates the same two machines
    assert sorted(m["id"] for m in control.machines(home, APP)) == sorted(m["id"] for m in machines)


def test_first_deploy_transcript(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(
        workdir,
        HTTP_CHECKS.replace("internal_port = 8080", 'internal_port = 8080\nauto_stop_machines = "stop"'),
    )
    proc = control.run(home, "deploy", "-i", IMAGE, cwd=workdir, env_extra={"FLY_EMIT_RELEASE_JSON": "1"})
    assert proc.returncode == 0, proc.stderr
    first, second = (m["id"] for m in control.machines(home, APP))
    (release,) = control.releases(home, APP)
    assert proc.stdout == (
        f"Validating {workdir / 'fly.toml'}\n"
        "✓ Configuration is valid\n"
        "\n"
        f"Watch your deployment at https://fly.io/apps/{APP}/monitoring\n"
        "\n"
        f"Provisioning ips for {APP}\n"
        + proc.stdout.split("Provisioning ips for sim-app\n")[1].split("\n")[0]
        + "\n  Shared ipv4: 66.241.125.17\n"
        "  Add a dedicated ipv4 with: fly ips allocate-v4\n"
        "\n"
        "This deployment will:\n"
        ' * create 2 "app" machines\n'
        "\n"
        "> Launching new machine\n"
        "No machines in group app, launching a new machine\n"
        f"> Machine {first} [app] was created\n"
        f"✔ Machine {first} [app] update finished: success\n"
        "Creating a second machine for high availability and zero downtime deployments.\n"
        'To disable this, set "min_machines_running = 0" in your fly.toml.\n'
        f"✔ Machine {second} [app] was created\n"
        f"✔ Machine {second} [app] update finished: success\n"
        "\n"
        "\n"
        "NOTE: The machines for [app] have services with 'auto_stop_machines = \"stop\"' that will be "
        "stopped "
        "when idling\n"
        "\n"
        f'{{"id":"{release["id"]}","version":1,"image_ref":"{IMAGE}"}}\n'
        "\n"
        f"Visit your newly deployed app at https://{APP}.fly.dev/\n"
        "\n"
    )
    assert proc.stderr == (
        "==> Verifying app config\n"
        "--> Verified app config\n"
        "==> Building image\n"
        f"Searching for image '{IMAGE}' remotely...\n"
        + proc.stderr.split("remotely...\n")[1].split("\n")[0]
        + "\nFinished launching new machines\n"
    )
    assert re.fullmatch(
        r"image found: img_[a-z0-9]{16}", proc.stderr.split("remotely...\n")[1].split("\n")[0]
    )


def test_ha_pair_standby_and_mounts(home: Path, tmp_path: Path) -> None:
    """machines_deploymachinesapp.go deployCreateMachinesForGroups: a group with services and no mount gets
    two machines, one without services one machine and a standby, one with a mount one machine."""
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(
        workdir,
        f'[build]\nimage = "{IMAGE}"\n[processes]\nweb = "serve"\nworker = "work"\ndb = "pg"\n'
        '[http_service]\ninternal_port = 8080\nprocesses = ["web"]\n'
        '[[mounts]]\nsource = "pgdata"\ndestination = "/data"\nprocesses = ["db"]\n',
    )
    out = ok(home, "deploy", cwd=workdir)
    assert (
        'This deployment will:\n * create 1 "db" machine\n * create 2 "web" machines\n'
        ' * create 1 "worker" machine and 1 standby machine for it\n\n'
    ) in out
    by_group = groups(home)
    assert {g: len(ms) for g, ms in by_group.items()} == {"db": 1, "web": 2, "worker": 2}
    assert [m["state"] for m in by_group["web"]] == ["started", "started"]
    main, standby = by_group["worker"]
    assert main["state"] == "started" and standby["state"] == "created"
    assert standby["config"]["standbys"] == [main["id"]]
    assert standby["config"]["env"]["FLY_STANDBY_FOR"] == main["id"]
    assert f"Creating a standby machine for {main['id']}" in out
    (volume,) = control.volumes(home, APP)
    assert volume["attached_machine_id"] == by_group["db"][0]["id"] and volume["region"] == "ord"
    assert "Creating a 1 GB volume named 'pgdata' for process group 'db'" in out
    # the web group's http_service does not reach the others (no `processes`: default group only)
    assert by_group["worker"][0]["config"]["services"] == [] and by_group["db"][0]["config"]["services"] == []
    ok(home, "deploy", cwd=workdir)  # a redeploy creates nothing; the standby stays created
    assert {g: len(ms) for g, ms in groups(home).items()} == {"db": 1, "web": 2, "worker": 2}
    assert control.machine_states(home, APP)[standby["id"]] == "created"
    assert len(control.volumes(home, APP)) == 1
    # machines_launchinput.go shouldSkipLaunch: a failed (or started) machine is launched, standby or not
    with control.edit(home) as st:
        next(m for m in st["apps"][APP]["machines"] if m["id"] == standby["id"])["state"] = "failed"
    ok(home, "deploy", cwd=workdir)
    assert control.machine_states(home, APP)[standby["id"]] == "started"


def test_ha_false_and_services_without_processes_apply_to_default_group(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n{HTTP_CHECKS}')
    out = ok(home, "deploy", "--ha=false", cwd=workdir)
    assert ' * create 1 "app" machine\n' in out and "second machine" not in out
    assert len(control.machines(home, APP)) == 1
    # a later deploy does not add the spare: only groups WITHOUT machines get new ones
    ok(home, "deploy", cwd=workdir)
    assert len(control.machines(home, APP)) == 1


def test_release_json_line(home: Path, deployed: Path) -> None:
    """DeployMachinesApp prints json.Marshal({id, version, image_ref}) + "\\n" on stdout when
    FLY_EMIT_RELEASE_JSON is non-empty and the deploy succeeded; "Visit ..." comes AFTER it."""
    control.add_image(home, IMAGE2)
    write_toml(deployed, HTTP_CHECKS)  # no [build] image: --nixpacks builds
    out = ok(home, "deploy", "--nixpacks", cwd=deployed, env_extra={"FLY_EMIT_RELEASE_JSON": "1"})
    release = control.releases(home, APP)[-1]
    line = f'{{"id":"{release["id"]}","version":2,"image_ref":"{release["image_ref"]}"}}'
    assert line in out.splitlines()
    assert out.index("{") < out.index(line)  # build output with braces comes first
    before, after = out.split(line + "\n")
    assert "Nixpacks v" in before and "#9 6.102 {" in before
    assert after == f"\nVisit your newly deployed app at https://{APP}.fly.dev/\n\n"
    # decoding from the first "{" gets something else; finding the line gets the release
    first, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    assert first != json.loads(line)
    found = [json.loads(x) for x in out.splitlines() if x.startswith('{"id":')]
    assert found == [{"id": release["id"], "version": 2, "image_ref": release["image_ref"]}]
    # any non-empty value turns it on ("0" too); empty or unset does not; nor a failed deploy
    assert (
        line_count(ok(home, "deploy", "-i", IMAGE2, cwd=deployed, env_extra={"FLY_EMIT_RELEASE_JSON": "0"}))
        == 1
    )
    assert (
        line_count(ok(home, "deploy", "-i", IMAGE2, cwd=deployed, env_extra={"FLY_EMIT_RELEASE_JSON": ""}))
        == 0
    )
    control.set_health_plan(home, APP, ["fail"])
    proc = control.run(home, "deploy", "-i", IMAGE2, cwd=deployed, env_extra={"FLY_EMIT_RELEASE_JSON": "1"})
    assert proc.returncode == 1 and line_count(proc.stdout) == 0
    ok(home, "deploy", "-i", IMAGE2, cwd=deployed)  # healthy again
    # secrets rollouts run the same DeployMachinesApp: they print it too
    out = ok(home, "secrets", "set", "K=v", "-a", APP, env_extra={"FLY_EMIT_RELEASE_JSON": "1"})
    assert line_count(out) == 1 and "Visit your" not in out
    control.set_build_output(home, stdout="")
    out = ok(home, "deploy", "--nixpacks", cwd=deployed, env_extra={"FLY_EMIT_RELEASE_JSON": "1"})
    assert "#9 6.102" not in out and line_count(out) == 1
    control.set_version(home, "0.4.55")  # FLY_EMIT_RELEASE_JSON arrived in v0.4.56
    out = ok(home, "deploy", "-i", IMAGE, cwd=deployed, env_extra={"FLY_EMIT_RELEASE_JSON": "1"})
    assert line_count(out) == 0 and out.rstrip().endswith(
        f"Visit your newly deployed app at https://{APP}.fly.dev/"
    )


def line_count(stdout: str) -> int:
    return sum(1 for line in stdout.splitlines() if line.startswith('{"id":'))


def test_stopped_machines_stay_stopped(home: Path, deployed: Path) -> None:
    """machines_launchinput.go shouldSkipLaunch: a machine not started/starting/failed is updated but not
    started, and flyctl does not wait for it; its checks are stale."""
    control.add_image(home, IMAGE2)
    first, second = (m["id"] for m in control.machines(home, APP))
    control.stop_machines(home, APP, [first])
    control.stop_machines(home, APP, [second], suspend=True)
    before = json.loads(ok(home, "checks", "list", "-a", APP, "-j"))
    time.sleep(1.1)  # check timestamps have second precision
    out = ok(home, "deploy", "-i", IMAGE2, cwd=deployed)
    assert (
        f"Machine {first} reached stopped state" in out and f"Machine {second} reached suspended state" in out
    )
    assert "Running smoke checks" not in out
    states = {m["id"]: m for m in control.machines(home, APP)}
    assert states[first]["state"] == "stopped" and states[second]["state"] == "suspended"
    assert states[first]["config"]["image"] == IMAGE2 and states[first]["image_ref"]["tag"] == "v2"
    assert states[first]["config"]["metadata"]["fly_release_version"] == "2"
    after = json.loads(ok(home, "checks", "list", "-a", APP, "-j"))
    assert after == before  # every active machine is listed; stopped ones keep their old results
    status = json.loads(ok(home, "status", "-a", APP, "--json"))
    assert sorted(m["state"] for m in status["Machines"]) == ["stopped", "suspended"]
    # even a deploy of an unhealthy image passes when nothing gets started
    control.set_health_plan(home, APP, ["fail"])
    ok(home, "deploy", "-i", IMAGE, cwd=deployed)
    assert control.releases(home, APP)[-1]["status"] == "complete"


def test_unhealthy_deploy_keeps_new_image_current(home: Path, deployed: Path) -> None:
    control.add_image(home, IMAGE2)
    control.set_health_plan(home, APP, ["fail", "pass"])
    proc = control.run(home, "deploy", "-i", IMAGE2, cwd=deployed)
    assert proc.returncode == 1
    first, second = sorted(m["id"] for m in control.machines(home, APP))
    assert error_part(proc.stderr) == (
        f"Error: failed to update machine {first}: Unrecoverable error: timeout reached waiting for health "
        "checks "
        f"to pass for machine {first}: failed to get VM {first}: context deadline exceeded\n"
    )
    # rolling, max-unavailable 0.33 of 2 warm machines: one at a time; the second is never touched
    assert "✖ [2/2] skipping machine update due to earlier failure" in proc.stdout
    images = {m["id"]: m["config"]["image"] for m in control.machines(home, APP)}
    assert images == {first: IMAGE2, second: IMAGE}
    assert [r["status"] for r in control.releases(home, APP)] == ["complete", "failed"]
    checks = json.loads(ok(home, "checks", "list", "-a", APP, "--json"))
    assert checks[first][0]["status"] == "critical" and checks[second][0]["status"] == "passing"
    ok(home, "deploy", "-i", IMAGE, cwd=deployed)  # the plan's next entry passes
    assert control.releases(home, APP)[-1]["status"] == "complete"
    # unhealthy image patterns; --detach does not wait
    control.mark_image_unhealthy(home, "*:bad-*")
    control.add_image(home, "registry.fly.io/sim-app:bad-1")
    fails(home, "deploy", "-i", "registry.fly.io/sim-app:bad-1", cwd=deployed)
    ok(home, "deploy", "-i", "registry.fly.io/sim-app:bad-1", "--detach", cwd=deployed)
    assert control.releases(home, APP)[-1]["status"] == "complete"
    assert control.app_healthy(home, APP) is False


def test_immediate_strategy_waits_for_nothing(home: Path, deployed: Path) -> None:
    """plan.go updateExistingMachinesWRecovery: "immediate" skips health and smoke checks."""
    control.add_image(home, IMAGE2)
    control.set_health_plan(home, APP, ["fail"])
    out = ok(home, "deploy", "-i", IMAGE2, "--strategy", "immediate", cwd=deployed)
    assert "Checking health of machine" not in out
    assert control.releases(home, APP)[-1]["status"] == "complete"
    assert {m["config"]["image"] for m in control.machines(home, APP)} == {IMAGE2}
    assert control.app_healthy(home, APP) is False


def test_no_checks_means_nothing_to_wait_for(home: Path, tmp_path: Path) -> None:
    """leasable_machine.go WaitForHealthchecksToPass returns at once when no check is configured."""
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n')
    control.set_health_plan(home, APP, ["fail", "fail"])
    ok(home, "deploy", cwd=workdir)
    ok(home, "deploy", cwd=workdir)
    assert [r["status"] for r in control.releases(home, APP)] == ["complete", "complete"]
    assert control.app_healthy(home, APP) is False  # the app itself is broken all the same


def test_crashing_app(home: Path, deployed: Path, tmp_path: Path) -> None:
    control.add_image(home, IMAGE2)
    control.set_health_plan(home, APP, ["crash"])
    proc = control.run(home, "deploy", "-i", IMAGE2, cwd=deployed)
    first = sorted(m["id"] for m in control.machines(home, APP))[0]
    assert error_part(proc.stderr) == (
        f"Error: failed to update machine {first}: Unrecoverable error: smoke checks for {first} failed: "
        "the app "
        "appears to be crashing\n"
    )
    crashed = {m["id"]: m for m in control.machines(home, APP)}[first]
    assert crashed["state"] == "stopped" and crashed["checks"][0]["status"] == "critical"
    assert crashed["events"][1]["type"] == "exit"
    # a first deploy that crashes: spawnMachineInGroup's smoke checks, with their suggestion
    control.create_app(home, "crashy")
    control.set_health_plan(home, "crashy", ["crash"])
    err = fails(home, "deploy", "-a", "crashy", "-i", IMAGE, cwd=deployed)
    (mid,) = [m["id"] for m in control.machines(home, "crashy")]
    assert error_part(err).startswith(
        f"Error: smoke checks for {mid} failed: the app appears to be crashing\n"
        f"Smoke checks for {mid} failed: the app appears to be crashing\n"
    )
    # a machine that never starts: state "failed", flyctl times out waiting for "started"
    control.create_app(home, "broken")
    control.set_health_plan(home, "broken", ["failed"])
    err = fails(home, "deploy", "-a", "broken", "-i", IMAGE, cwd=deployed)
    assert error_part(err).startswith(
        "Error: timeout reached waiting for machine's state to change\n"
        "Your machine was created, but never started or exited immediately."
    )
    assert "or you can try increasing the timeout with the --wait-timeout flag\n\n" in err
    assert list(control.machine_states(home, "broken").values()) == ["failed"]
    # crashes after a healthy deploy (a knob), and --detach deploying a crashing image
    control.crash_machines(home, APP, state="failed")
    assert set(control.machine_states(home, APP).values()) <= {"failed", "stopped"}
    control.set_health_plan(home, APP, ["crash"])
    ok(home, "deploy", "-i", IMAGE, "--detach", cwd=deployed)
    assert control.releases(home, APP)[-1]["status"] == "complete"


def test_nixpacks_and_image_errors(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    workdir = tmp_path / "app"
    write_toml(workdir, "")
    assert "does not have a Dockerfile or buildpacks configured" in fails(home, "deploy", cwd=workdir)
    err = fails(home, "deploy", "--image", "registry.fly.io/sim-app:nope", cwd=workdir)
    assert error_part(err) == (
        "Error: failed to fetch an image or build from source: could not find image "
        '"registry.fly.io/sim-app:nope"\n'
    )
    (workdir / "nixpacks.toml").write_text('[phases.build]\ncmds = ["make all"]\n[start]\ncmd = "./serve"\n')
    proc = control.run(home, "deploy", "--nixpacks", cwd=workdir)
    assert proc.returncode == 0
    assert "║ Build      │ make all" in proc.stdout and "║ Start      │ ./serve" in proc.stdout
    ref = control.releases(home, APP)[-1]["image_ref"]
    assert re.fullmatch(r"registry\.fly\.io/sim-app:deployment-[0-9A-HJKMNP-TV-Z]{26}", ref)
    assert f"\n=== Successfully Built! ===\n\nRun:\n  docker run -it {ref}\n" in proc.stdout
    assert f"image: {ref}\n" in proc.stderr
    ok(home, "deploy", "--nixpacks", "--image-label", "nix-abc", cwd=workdir)
    assert control.releases(home, APP)[-1]["image_ref"] == "registry.fly.io/sim-app:nix-abc"
    ok(home, "deploy", "--image", ref, "--strategy", "immediate", cwd=workdir)  # rollback = an older image
    assert control.releases(home, APP)[-1]["image_ref"] == ref


def test_deploy_config_and_flag_errors(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    err = fails(home, "deploy", "-c", "missing.toml", "--nixpacks", cwd=tmp_path)
    assert err.startswith(f"Error: failed loading app config from {tmp_path / 'missing.toml'}: ")
    (tmp_path / "broken.toml").write_text("app = [unclosed\n")
    assert "failed loading app config from" in fails(home, "deploy", "-c", "broken.toml", cwd=tmp_path)
    workdir = tmp_path / "app"
    write_toml(workdir, '[[mounts]]\nsource = "data"\ndestination = "/data"\n')
    for strategy in ("canary", "bluegreen", "sideways"):
        proc = control.run(home, "deploy", "-i", IMAGE, "--strategy", strategy, cwd=workdir)
        assert proc.returncode == 1 and proc.stderr.rstrip().endswith("Error: App configuration is not valid")
        assert proc.stdout.startswith(f"Validating {workdir / 'fly.toml'}\n\n   ✘")  # the report is on stdout
    write_toml(workdir, "")
    assert "App configuration is not valid" in fails(
        home, "deploy", "-i", IMAGE, "--strategy", "bluegreen", cwd=workdir
    )
    assert error_part(fails(home, "deploy", "-i", IMAGE, "--wait-timeout", "soon", cwd=workdir)) == (
        "Error: invalid duration value soon used for --wait-timeout flag: valid options are a number of "
        "seconds, "
        "number with time unit (i.e.: 5m, 180s) or 'none'\n"
    )
    for value in ("120", "2m30s", "none"):
        ok(home, "deploy", "-i", IMAGE, "--wait-timeout", value, cwd=workdir)
    assert "the value for --max-unavailable must be > 0" in fails(
        home, "deploy", "-i", IMAGE, "--max-unavailable", "0", cwd=workdir
    )
    assert "--deploy-retries must be set to a positive integer, 0, or 'auto'" in fails(
        home, "deploy", "-i", IMAGE, "--deploy-retries", "many", cwd=workdir
    )
    assert 'Could not find App "ghost"' in fails(home, "deploy", "-a", "ghost", "-i", IMAGE, cwd=workdir)
    # every real flag parses (aliases too); an unknown one fails like cobra
    ok(
        home,
        "deploy",
        "-i",
        IMAGE,
        "--only-regions",
        "ord",
        "--smoke-checks=false",
        "--auto-confirm",
        cwd=workdir,
    )
    assert fails(home, "deploy", "--no-such-flag", cwd=workdir) == "Error: unknown flag: --no-such-flag\n"


def test_first_deploy_creates_volumes_and_process_group_machines(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(
        workdir,
        f'[build]\nimage = "{IMAGE}"\n[processes]\nweb = "serve --port 8080"\nworker = "work"\n'
        '[[mounts]]\nsource = "data"\ndestination = "/data"\nprocesses = ["web"]\n',
    )
    ok(home, "deploy", cwd=workdir)
    by_group = groups(home)
    assert {g: len(ms) for g, ms in by_group.items()} == {"web": 1, "worker": 2}  # worker: + a standby
    (web,) = by_group["web"]
    assert web["config"]["init"]["cmd"] == ["serve", "--port", "8080"]
    (volume,) = control.volumes(home, APP)
    assert volume["name"] == "data" and volume["region"] == "ord"
    assert volume["attached_machine_id"] == web["id"]
    assert web["config"]["mounts"] == [
        {"encrypted": True, "path": "/data", "size_gb": 1, "volume": volume["id"], "name": "data"}
    ]
    ok(home, "deploy", cwd=workdir)  # updates, no new volumes or machines
    assert len(control.volumes(home, APP)) == 1 and len(control.machines(home, APP)) == 3


def test_mount_added_later_needs_a_volume_per_machine_region(home: Path, deployed: Path) -> None:
    """machines.go validateVolumeConfig: existing machines cannot gain a volume without one in their
    region."""
    text = (deployed / "fly.toml").read_text() + '[[mounts]]\nsource = "data"\ndestination = "/data"\n'
    (deployed / "fly.toml").write_text(text)
    err = fails(home, "deploy", cwd=deployed)
    assert error_part(err) == (
        "Error: Process group 'app' needs volumes with name 'data' to fulfill mounts defined in fly.toml; "
        "Run "
        "`fly volume create data -r REGION -n COUNT` for the following regions and counts: ord=2\n"
    )
    ok(home, "volumes", "create", "data", "-a", APP, "-r", "ord", "-n", "2", "-y")
    old = {m["id"] for m in control.machines(home, APP)}
    ok(home, "deploy", cwd=deployed)
    machines = control.machines(home, APP)
    assert not old & {m["id"] for m in machines}  # a machine cannot gain a volume: each one was replaced
    assert sorted(v["attached_machine_id"] for v in control.volumes(home, APP)) == sorted(
        m["id"] for m in machines
    )


def test_regions_filter_and_rolling_pool(home: Path, deployed: Path) -> None:
    ok(home, "scale", "count", "4", "--region", "ord,ams", "-a", APP, "-y")  # +1 ord, +1 ams (round-robin)
    regions = sorted(m["region"] for m in control.machines(home, APP))
    assert regions == ["ams", "ord", "ord", "ord"]
    control.add_image(home, IMAGE2)
    proc = control.run(home, "deploy", "-i", IMAGE2, "--regions", "ams", cwd=deployed)
    assert proc.returncode == 0 and "--regions filter applied, deploying to 1/4 machines\n" in proc.stderr
    by_region = {(m["region"], m["config"]["image"]) for m in control.machines(home, APP)}
    assert by_region == {("ams", IMAGE2), ("ord", IMAGE)}
    # every machine keeps its region; the whole app moves with a plain deploy
    ok(home, "deploy", "-i", IMAGE2, cwd=deployed)
    assert sorted(m["region"] for m in control.machines(home, APP)) == regions
    assert {m["config"]["image"] for m in control.machines(home, APP)} == {IMAGE2}
    # --process-groups naming no group of the config: nothing selected, nothing created (flyctl's quirk)
    proc = control.run(home, "deploy", "-i", IMAGE, "--process-groups", "nope", cwd=deployed)
    assert (
        proc.returncode == 0 and "--process-groups filter applied, deploying to 0/4 machines" in proc.stderr
    )
    assert {m["config"]["image"] for m in control.machines(home, APP)} == {IMAGE2}


def test_deploy_finds_images_in_a_local_registry(home: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Accept", "")))
            if self.path == "/v2/team/sim-app/manifests/good":
                self.send_response(200)
                self.send_header("Docker-Content-Digest", "sha256:" + "ab" * 32)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.end_headers()
                self.wfile.write(b"{}")
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        control.create_app(home, APP)
        workdir = tmp_path / "app"
        write_toml(workdir, "")
        good = f"127.0.0.1:{port}/team/sim-app:good"
        ok(home, "deploy", "--image", good, cwd=workdir)
        assert control.machines(home, APP)[0]["image_ref"]["digest"] == "sha256:" + "ab" * 32
        bad = f"localhost:{port}/team/sim-app:missing"
        err = fails(home, "deploy", "--image", bad, cwd=workdir)
        assert (
            error_part(err)
            == f'Error: failed to fetch an image or build from source: could not find image "{bad}"\n'
        )
    finally:
        server.shutdown()
        server.server_close()
    assert seen[0][0] == "/v2/team/sim-app/manifests/good"
    assert "application/vnd.docker.distribution.manifest.v2+json" in seen[0][1]
    assert "application/vnd.oci.image.manifest.v1+json" in seen[0][1]


# --- releases, logs -----------------------------------------------------------------------------------------


def test_releases_newest_first_and_capped(home: Path, deployed: Path) -> None:
    ok(home, "deploy", cwd=deployed)
    listed = json.loads(ok(home, "releases", "-a", APP, "-j"))
    assert [r["Version"] for r in listed] == [2, 1]
    assert set(listed[0]) == {
        "ID",
        "Version",
        "Stable",
        "InProgress",
        "Reason",
        "Description",
        "Status",
        "DeploymentStrategy",
        "Metadata",
        "User",
        "EvaluationID",
        "CreatedAt",
        "ImageRef",
    }
    assert listed[0]["Status"] == "complete" and listed[0]["ImageRef"] == IMAGE
    with control.edit(home) as st:
        template = st["apps"][APP]["releases"][-1]
        st["apps"][APP]["releases"] += [{**template, "version": v} for v in range(3, 31)]
    listed = json.loads(ok(home, "releases", "-a", APP, "--json"))
    assert len(listed) == 25 and listed[0]["Version"] == 30 and listed[-1]["Version"] == 6
    assert IMAGE in ok(home, "releases", "-a", APP, "--image")


def test_logs_text_json_and_no_tail_hang(home: Path, deployed: Path, tmp_path: Path) -> None:
    text = ok(home, "logs", "-a", APP, "--no-tail")
    mid = control.machines(home, APP)[0]["id"]
    assert re.search(
        rf"^\S+Z app\[{mid}\] ord \[info\]Pulling container image {re.escape(IMAGE)}$", text, re.M
    )
    stream = ok(home, "logs", "-a", APP, "-n", "-j")
    first, _ = json.JSONDecoder().raw_decode(stream)
    assert set(first) == {"level", "instance", "message", "region", "timestamp", "meta"}

    control.create_app(home, "quiet")
    proc = subprocess.Popen(
        [sys.executable, str(control.FLYCTL), "logs", "-a", "quiet", "--no-tail"],
        env=control.env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)
        assert proc.poll() is None, "logs --no-tail with no logs must keep polling (faithful to flyctl)"
        ok(home, "apps", "list")  # a polling `logs` does not hold the state lock
        control.add_log(home, "quiet", "finally something")
        out, _ = proc.communicate(timeout=10)
        assert out.decode().endswith("[info]finally something\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- faults -------------------------------------------------------------------------------------------------


def test_region_filter_without_machines_there_creates_a_pair_in_primary(home: Path, deployed: Path) -> None:
    """machines_deploymachinesapp.go resolveProcessGroupChanges works on the FILTERED machines: a group with
    none selected "needs machines", and launchInputForLaunch puts them in the primary region."""
    proc = control.run(home, "deploy", "--regions", "ams", cwd=deployed)
    assert proc.returncode == 0
    assert 'Process groups have changed. This will:\n * create 2 "app" machines\n' in proc.stdout
    assert "--regions filter applied, deploying to 0/2 machines" in proc.stderr
    assert sorted(m["region"] for m in control.machines(home, APP)) == ["ord"] * 4


def test_a_drifted_digest_shows_on_one_machine_of_one_deploy(home: Path, deployed: Path) -> None:
    before = {m["image_ref"]["digest"] for m in control.machines(home, APP)}
    assert len(before) == 1
    wrong = "sha256:" + "cd" * 32
    control.drift_digest(home, APP, wrong)
    ok(home, "deploy", cwd=deployed)
    listed = json.loads(ok(home, "machines", "list", "-a", APP, "--json"))
    assert sorted(m["image_ref"]["digest"] for m in listed) == sorted([wrong, *before])
    status = json.loads(ok(home, "status", "-a", APP, "--json"))
    assert wrong in {m["image_ref"]["digest"] for m in status["Machines"]}
    ok(home, "deploy", cwd=deployed)  # consumed: the next deploy puts every machine on the image's digest
    assert {m["image_ref"]["digest"] for m in control.machines(home, APP)} == before
