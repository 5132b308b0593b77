"""``fly volumes``: create (never de-duplicates), list (destroyed hidden unless --all), destroy."""

from __future__ import annotations

import json
from pathlib import Path

from flyctl_sim import control
from helpers.sim import APP, HTTP_CHECKS, IMAGE, fails, ok, write_toml


def test_volumes_create_never_deduplicates(home: Path) -> None:
    control.create_app(home, APP)
    assert "yes flag must be specified" in fails(home, "volumes", "create", "data", "-a", APP, "-r", "ord")
    assert "region code must be specified" in fails(home, "volumes", "create", "data", "-a", APP, "-y")
    # create.go confirmVolumeCreate: --count above 1 needs no confirmation; a count of 0 creates nothing
    assert "region code must be specified" in fails(home, "volumes", "create", "data", "-a", APP, "-n", "2")
    assert ok(home, "volumes", "create", "data", "-a", APP, "-y", "-r", "ord", "-n", "0") == ""
    assert "region xyz not found" in fails(home, "vol", "create", "data", "-a", APP, "-y", "-r", "xyz")
    assert "between 1 and 500" in fails(
        home, "volumes", "create", "data", "-a", APP, "-y", "-r", "ord", "-s", "501"
    )
    first = json.loads(ok(home, "volumes", "create", "data", "-a", APP, "-y", "-r", "ord", "-j"))
    assert first["size_gb"] == 1 and first["id"].startswith("vol_") and first["attached_machine_id"] is None
    # a same-named volume exists: no confirmation needed, and ANOTHER volume is created
    ok(home, "volume", "create", "data", "-a", APP, "-s", "3", env_extra={"FLY_REGION": "ord"})
    listed = json.loads(ok(home, "volumes", "ls", "-a", APP, "--json"))
    assert [v["name"] for v in listed] == ["data", "data"] and listed[0]["id"] != listed[1]["id"]
    assert set(listed[0]) == {
        "id",
        "name",
        "state",
        "size_gb",
        "region",
        "zone",
        "encrypted",
        "attached_machine_id",
        "attached_alloc_id",
        "created_at",
        "host_dedication_id",
        "snapshot_retention",
        "auto_backup_enabled",
        "host_status",  # fly-go volume_types.go, omitempty: the API fills it in
    }
    two = ok(home, "volumes", "create", "logs", "-a", APP, "-y", "-r", "ord", "-n", "2", "--json")
    decoder, pos, objects = json.JSONDecoder(), 0, []
    while pos < len(two.strip()):
        obj, pos = decoder.raw_decode(two, pos)
        objects.append(obj)
        while pos < len(two) and two[pos].isspace():
            pos += 1
    assert len(objects) == 2 and len(control.volumes(home, APP)) == 4


def test_volumes_destroy(home: Path, tmp_path: Path) -> None:
    """flyctl internal/command/volumes/destroy.go; an attached volume is refused by the API."""
    control.create_app(home, APP)
    vol = json.loads(ok(home, "volumes", "create", "data", "-a", APP, "-y", "-r", "ord", "-j"))["id"]
    err = fails(home, "volumes", "destroy", vol, "-a", APP)
    assert err.startswith("Warning! Every volume is pinned to a specific physical host.")
    assert err.endswith("Error: yes flag must be specified when not running interactively\n")
    assert fails(home, "volumes", "destroy") == "Error: volume ID or app required\n"
    assert fails(home, "volumes", "destroy", "-a", APP) == (
        "Error: volume ID must be specified when not running interactively\n"
    )
    with control.edit(home) as st:
        st["apps"][APP]["volumes"][0]["attached_machine_id"] = "0123456789abcd"
    assert fails(home, "vol", "rm", vol, "-y") == (
        f"Error: failed destroying volume: failed to destroy volume {vol}: failed_precondition: volume is "
        "currently bound to machine: 0123456789abcd\n"
    )
    with control.edit(home) as st:
        st["apps"][APP]["volumes"][0]["attached_machine_id"] = None
    assert ok(home, "volumes", "destroy", vol, "-y") == f"Destroyed volume ID: {vol} name: data\n"
    assert json.loads(ok(home, "volumes", "list", "-a", APP, "-j")) == []
    (gone,) = json.loads(ok(home, "volumes", "list", "-a", APP, "-j", "--all"))
    assert gone["id"] == vol and gone["state"] == "scheduling_destroy"


def test_a_destroyed_machines_volume_unbinds_after_the_delay(home: Path, tmp_path: Path) -> None:
    """Fly unbinds a destroyed machine's volume some time later (terraform-provider-fly #154, #218); the
    simulator counts that delay in volume API calls (``control.set_unbind_delay``)."""
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n[mounts]\nsource = "data"\ndestination = "/data"\n')
    ok(home, "volumes", "create", "data", "-a", APP, "-y", "-r", "ord")
    ok(home, "deploy", cwd=workdir)
    (machine,) = control.machines(home, APP)
    (volume,) = control.volumes(home, APP)
    assert volume["attached_machine_id"] == machine["id"]
    control.set_unbind_delay(home, APP, 2)
    assert "currently started, either stop first or use --force flag" in fails(
        home, "machine", "destroy", machine["id"], "-a", APP
    )
    assert ok(home, "machine", "destroy", machine["id"], "-a", APP, "--force") == (
        f"machine {machine['id']} was found and is currently in started state, attempting to destroy...\n"
        f"{machine['id']} has been destroyed\n"
    )
    assert control.machines(home, APP) == []
    bound = f"currently bound to machine: {machine['id']}"
    assert bound in fails(home, "volumes", "destroy", volume["id"], "-a", APP, "-y")  # call 1 of 2
    (listed,) = json.loads(ok(home, "volumes", "list", "-a", APP, "-j"))  # call 2 of 2
    assert listed["attached_machine_id"] == machine["id"]
    assert "Destroyed volume ID" in ok(home, "volumes", "destroy", volume["id"], "-a", APP, "-y")
    assert "was not found in app" in fails(home, "machine", "destroy", machine["id"], "-a", APP)


def test_status_lists_machines_by_id_descending(home: Path, tmp_path: Path) -> None:
    """status/machines.go RenderMachineStatus: sort.Slice by ID, descending (text and --json)."""
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n{HTTP_CHECKS}')
    ok(home, "deploy", cwd=workdir)
    ok(home, "scale", "count", "4", "-a", APP, "-y")
    ids = [m["id"] for m in json.loads(ok(home, "status", "-a", APP, "--json"))["Machines"]]
    assert len(ids) == 4 and ids == sorted(ids, reverse=True)
