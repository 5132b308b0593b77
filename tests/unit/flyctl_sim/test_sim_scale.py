"""``fly scale count`` (flyctl internal/command/scale/count.go, count_machines.go): grammar, plan lines,
errors, regions, volumes, scale down."""

from __future__ import annotations

from pathlib import Path

import pytest
from flyctl_sim import control
from helpers.sim import APP, HTTP_CHECKS, IMAGE, fails, fly, groups, ok, write_toml

MOUNT = '[[mounts]]\nsource = "data"\ndestination = "/data"\n'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["abc"], "'abc' is not a valid process=count option"),
        (["app=abc"], 'strconv.Atoi: parsing "abc": invalid syntax'),
        (["app=+0"], "invalid relative scale count: +0"),
        (["+0"], "'+0' is not a valid process=count option"),  # one argument that fails falls through
        (["3", "app=2"], "'3' is not a valid process=count option"),
        (["a=b=c"], "'a=b=c' is not a valid process=count option"),
        (
            ["web=2"],
            "Attempting to scale unknown process groups [web] but valid names are [app].\n Use `fly scale "
            "count "
            "COUNT --process-group=NAME` \n or multi group syntax `fly scale count NAME1=COUNT1 "
            "NAME2=COUNT2 ...`",
        ),
        (["2", "--process-group", "worker"], "Attempting to scale unknown process groups [worker]"),
        (["9", "--max-per-region", "2"], "the number of regions by the maximum machines per region is fewer"),
    ],
)
def test_count_argument_errors(home: Path, deployed: Path, args: list[str], message: str) -> None:
    err = fails(home, "scale", "count", *args, "-a", APP, "-y")
    assert err.startswith(f"Error: {message}")
    assert len(control.machines(home, APP)) == 2


def test_count_parse_errors_like_cobra(home: Path, deployed: Path) -> None:
    assert fails(home, "scale", "count", "-a", APP) == "Error: requires at least 1 arg(s), only received 0\n"
    assert fails(home, "scale", "count", "-1", "-a", APP) == "Error: unknown shorthand flag: '1' in -1\n"
    assert (
        fails(home, "scale", "count", "2", "--regions", "ord", "-a", APP)
        == "Error: unknown flag: --regions\n"
    )
    ok(home, "scale", "count", "-a", APP, "-y", "--", "-1")  # after "--" a leading dash is a relative count
    assert len(control.machines(home, APP)) == 1


def test_count_needs_a_deployed_app(home: Path, tmp_path: Path) -> None:
    assert 'Could not find App "ghost"' in fails(home, "scale", "count", "2", "-a", "ghost")
    control.create_app(home, APP)
    assert fails(home, "scale", "count", "2", "-a", APP, "-y") == (
        "Error: failed to grab app config from existing machines, error: could not create a fly.toml from "
        "any "
        "machines :-(\n\n"
    )
    control.add_image(home, IMAGE)
    control.set_health_plan(home, APP, ["fail"])
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n{HTTP_CHECKS}')
    fails(home, "deploy", cwd=workdir)  # the only release failed
    # count_machines.go asks for the newest "complete" release, but fly-go's query ignores the status
    # (resource_releases.go GetAppReleasesMachines): the failed release is the one scale count clones from.
    proc = fly(home, "scale", "count", "3", "-a", APP, "-y")
    assert proc.returncode == 0, proc.stderr
    versions = {m["config"]["metadata"]["fly_release_version"] for m in control.machines(home, APP)}
    assert versions == {str(control.releases(home, APP)[-1]["version"])}


def test_count_plan_yes_and_regions(home: Path, deployed: Path) -> None:
    before = sorted(m["id"] for m in control.machines(home, APP))
    proc = fly(home, "scale", "count", "4", "--region", "ord,ams", "-a", APP)
    assert proc.returncode == 1
    assert proc.stdout == (
        f"App '{APP}' is going to be scaled according to this plan:\n"
        "  +1 machines for group 'app' on region 'ord' of size 'shared-cpu-1x'\n"
        "  +1 machines for group 'app' on region 'ams' of size 'shared-cpu-1x'\n"
    )
    assert proc.stderr == "Error: --yes flag must be specified when not running interactively\n"
    assert sorted(m["id"] for m in control.machines(home, APP)) == before  # nothing happened
    out = ok(home, "scale", "count", "4", "--region", "ord,ams", "-a", APP, "--yes")
    created = [line.split()[1] for line in out.splitlines() if line.startswith("  Created ")]
    assert out.splitlines()[3] == "Executing scale plan" and len(created) == 2
    machines = {m["id"]: m for m in control.machines(home, APP)}
    assert sorted(machines[c]["region"] for c in created) == ["ams", "ord"]
    assert f"  Created {created[0]} group:app region:ord size:shared-cpu-1x" in out
    # the new machines are clones of the group's first machine: same image, release, services; started
    assert {m["config"]["image"] for m in machines.values()} == {IMAGE}
    assert all(m["state"] == "started" for m in machines.values())
    assert len(control.releases(home, APP)) == 1  # scaling makes no release
    assert (
        ok(home, "scale", "count", "4", "-a", APP, "-y")
        == "App already scaled to desired state. No need for changes\n"
    )
    # without --region: every region with a machine; removals start at the second region listed
    out = ok(home, "scale", "count", "3", "-a", APP, "-y")
    assert "  -1 machines for group 'app' on region 'ams' of size 'shared-cpu-1x'\n" in out
    assert sorted(m["region"] for m in control.machines(home, APP)) == ["ord", "ord", "ord"]
    assert "fewer than the expected total" in fails(
        home, "scale", "count", "app=+2", "--max-per-region", "4", "-a", APP, "-y"
    )  # one region (ord) x 4 < 5
    ok(home, "scale", "count", "app=+2", "--max-per-region", "5", "-a", APP, "-y")
    assert len(control.machines(home, APP)) == 5


def test_count_with_volumes(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n{HTTP_CHECKS}{MOUNT}')
    ok(home, "deploy", cwd=workdir)
    assert len(control.machines(home, APP)) == 1  # a mount: no HA pair
    ok(home, "volumes", "create", "data", "-a", APP, "-r", "ams", "-y")  # an unattached volume in ams
    out = ok(home, "scale", "count", "3", "--region", "ord,ams", "-a", APP, "-y")
    assert "  +1 machines for group 'app' on region 'ord' of size 'shared-cpu-1x'\n" in out
    assert "  +1 volumes  for group 'app' in region 'ord'\n" in out
    assert "   1 unattached volumes to be assigned to group 'app' in region 'ams'\n" in out
    assert "  Creating volume data region:ord size:1GiB\n" in out
    volumes = control.volumes(home, APP)
    assert len(volumes) == 3 and all(v["attached_machine_id"] for v in volumes)
    by_machine = {v["attached_machine_id"]: v for v in volumes}
    for machine in control.machines(home, APP):
        (mount,) = machine["config"]["mounts"]
        volume = by_machine[machine["id"]]
        assert (
            mount["volume"] == volume["id"] and volume["region"] == machine["region"]
        )  # one each, same region
        assert f"volume:{volume['id']}" in out or machine["id"] not in out
    # scale down from [ord, ams]: the ams machine, then ord's FIRST machine; their volumes KEPT (detached)
    first = control.machines(home, APP)[0]["id"]
    out = ok(home, "scale", "count", "1", "-a", APP, "-y")
    assert out.count("  Destroyed ") == 2 and f"  Destroyed {first} group:app region:ord" in out
    volumes = control.volumes(home, APP)
    assert len(volumes) == 3 and sum(1 for v in volumes if v["attached_machine_id"]) == 1
    # scaling up again reuses a free volume in the region, and creates the rest
    out = ok(home, "scale", "count", "2", "--region", "ams", "-a", APP, "-y")
    assert "  +1 volumes and 1 unattached volumes assigned to group 'app' in region 'ams'\n" in out
    assert len(control.volumes(home, APP)) == 4
    ok(home, "scale", "count", "1", "--region", "ams", "-a", APP, "-y")  # frees an ams volume
    out = ok(home, "scale", "count", "2", "--region", "ams", "--with-new-volumes", "-a", APP, "-y")
    assert "  +1 volumes  for group 'app' in region 'ams'\n" in out
    assert len(control.volumes(home, APP)) == 5  # a new one although an ams volume was free


def test_count_groups(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n[processes]\nweb = "serve"\nworker = "work"\n')
    ok(home, "deploy", cwd=workdir)
    ok(home, "scale", "count", "web=3", "worker=1", "-a", APP, "-y")
    assert {g: len(ms) for g, ms in groups(home).items()} == {"web": 3, "worker": 1}
    # web had a machine and its standby; the new one is a clone WITHOUT standbys, and started
    web = groups(home)["web"]
    assert [bool(m["config"].get("standbys")) for m in web] == [False, True, False]
    assert web[2]["state"] == "started"
    ok(home, "scale", "count", "0", "--process-group", "worker", "-a", APP, "-y")
    assert set(groups(home)) == {"web"}
    # a group without machines is rebuilt from the deployed config, not the local fly.toml
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n[processes]\nweb = "serve"\n')
    ok(home, "scale", "count", "2", "-g", "worker", "-a", APP, "-y")
    assert len(groups(home)["worker"]) == 2
