"""``fly platform regions`` (flyctl internal/command/platform/regions.go) and the volume host status that
decides whether ``scale count`` may reuse an unattached volume (scale/machine_defaults.go newDefaults)."""

from __future__ import annotations

import json
from pathlib import Path

from flyctl_sim import control
from flyctl_sim.regions import REGIONS
from helpers.sim import APP, HTTP_CHECKS, IMAGE, fails, ok, write_toml


def test_platform_regions_json_lists_every_region_sorted_by_name(home: Path) -> None:
    regions = json.loads(ok(home, "platform", "regions", "--json"))
    assert {r["code"] for r in regions} == REGIONS
    assert [r["name"] for r in regions] == sorted(r["name"] for r in regions)
    assert not any(r["deprecated"] for r in regions)
    iad = next(r for r in regions if r["code"] == "iad")
    assert iad["name"] == "Ashburn, Virginia (US)" and iad["geo_region"] == "north_america"
    text = ok(home, "platform", "regions")
    assert text.startswith("NAME") and "\nEurope" in text and "ams" in text


def test_platform_regions_needs_a_session(home: Path) -> None:
    control.logout(home)
    assert "no access token available" in fails(home, "platform", "regions", "--json")


def test_scale_count_reuses_only_volumes_whose_host_is_ok(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    mount = '[[mounts]]\nsource = "data"\ndestination = "/data"\n'
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n{HTTP_CHECKS}{mount}')
    ok(home, "deploy", cwd=workdir)
    spare = json.loads(ok(home, "volumes", "create", "data", "-a", APP, "-r", "ams", "-y", "--json"))
    assert spare["host_status"] == "ok"
    control.set_volume_host(home, APP, spare["id"], "unreachable")
    out = ok(home, "scale", "count", "1", "--region", "ams", "-a", APP, "-y")
    assert "  +1 volumes  for group 'app' in region 'ams'\n" in out  # a new one: the spare's host is down
    kept = next(v for v in control.volumes(home, APP) if v["id"] == spare["id"])
    assert kept["attached_machine_id"] is None
