"""``fly platform regions``: flyctl ``internal/command/platform/regions.go`` ``runRegions``.

The regions come from the Machines API (fly-go ``flaps/flaps_platform.go`` ``GetRegions``); flyctl drops the
deprecated ones, sorts by name, and with ``--json`` prints them as fly-go ``types.go`` ``Region`` objects
(``render.JSON``: indented). Without ``--json``: a table grouped by geo region.
"""

from __future__ import annotations

from typing import Any

from flyctl_sim import render
from flyctl_sim.cobra import Command
from flyctl_sim.commands.common import JSON
from flyctl_sim.invocation import Invocation
from flyctl_sim.regions import REGION_INFO, deprecated

GEO_NAMES = {  # fly-go types.go geoRegionNames
    "africa": "Africa",
    "asia_pacific": "Asia Pacific",
    "europe": "Europe",
    "north_america": "North America",
    "south_america": "South America",
}


def region_object(code: str, deprecated: bool = False) -> dict[str, Any]:
    """fly-go ``Region`` (every field: Go marshals zero values too). Coordinates, capacity and the
    paid-plan/MPG flags are not modelled (zero/false)."""
    name, geo = REGION_INFO[code]
    return {
        "code": code,
        "name": name,
        "latitude": 0,
        "longitude": 0,
        "gateway_available": False,
        "requires_paid_plan": False,
        "deprecated": deprecated,
        "capacity": 0,
        "geo_region": geo,
        "mpg_available": False,
    }


def run_regions(inv: Invocation) -> None:
    old = deprecated(inv.state)
    regions = sorted((region_object(code, code in old) for code in REGION_INFO), key=lambda r: r["name"])
    if inv.version() >= (0, 3, 196):  # commit 10bb78d0 "Filter deprecated regions"
        regions = [r for r in regions if not r["deprecated"]]
    if inv.json_output():
        inv.print_json(regions)
        return
    rows: list[list[str]] = []
    for geo in sorted({r["geo_region"] for r in regions}):
        rows.append(["", "", ""])
        rows.append([GEO_NAMES[geo], "", ""])
        rows += [[r["name"], r["code"], ""] for r in regions if r["geo_region"] == geo]
    inv.out.write(render.table(["Name", "Code", "MPG"], rows))


def command() -> Command:
    platform = Command("platform", "Fly.io platform information")
    platform.add(Command("regions", "List regions", flags=(JSON,), run=run_regions))
    return platform
