"""Fly.io regions the simulator knows: code → (name, geo region), as ``fly platform regions`` lists them.

Codes outside this table are refused the way the API refuses them (``region X not found``). The names and
geo regions are Fly's own (fly docs reference/regions; fly-go types.go ``GeoRegion``). Which regions
are deprecated is the API's to say (fly-go ``Region.Deprecated``); none is by default, and a test marks one
with ``control.deprecate_region``. flyctl v0.3.196+ (commit 10bb78d0, "Filter deprecated regions") drops
them from ``platform regions`` and from the regions ``--region`` may name (internal/prompt/prompt.go
``PlatformRegions``, ``Region``: ``region X not found``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NORTH_AMERICA, SOUTH_AMERICA, EUROPE, ASIA_PACIFIC, AFRICA = (
    "north_america",
    "south_america",
    "europe",
    "asia_pacific",
    "africa",
)

REGION_INFO: dict[str, tuple[str, str]] = {
    "ams": ("Amsterdam, Netherlands", EUROPE),
    "arn": ("Stockholm, Sweden", EUROPE),
    "atl": ("Atlanta, Georgia (US)", NORTH_AMERICA),
    "bog": ("Bogotá, Colombia", SOUTH_AMERICA),
    "bom": ("Mumbai, India", ASIA_PACIFIC),
    "bos": ("Boston, Massachusetts (US)", NORTH_AMERICA),
    "cdg": ("Paris, France", EUROPE),
    "den": ("Denver, Colorado (US)", NORTH_AMERICA),
    "dfw": ("Dallas, Texas (US)", NORTH_AMERICA),
    "ewr": ("Secaucus, NJ (US)", NORTH_AMERICA),
    "eze": ("Ezeiza, Argentina", SOUTH_AMERICA),
    "fra": ("Frankfurt, Germany", EUROPE),
    "gdl": ("Guadalajara, Mexico", NORTH_AMERICA),
    "gig": ("Rio de Janeiro, Brazil", SOUTH_AMERICA),
    "gru": ("Sao Paulo, Brazil", SOUTH_AMERICA),
    "hkg": ("Hong Kong, Hong Kong", ASIA_PACIFIC),
    "iad": ("Ashburn, Virginia (US)", NORTH_AMERICA),
    "jnb": ("Johannesburg, South Africa", AFRICA),
    "lax": ("Los Angeles, California (US)", NORTH_AMERICA),
    "lhr": ("London, United Kingdom", EUROPE),
    "mad": ("Madrid, Spain", EUROPE),
    "mia": ("Miami, Florida (US)", NORTH_AMERICA),
    "nrt": ("Tokyo, Japan", ASIA_PACIFIC),
    "ord": ("Chicago, Illinois (US)", NORTH_AMERICA),
    "otp": ("Bucharest, Romania", EUROPE),
    "phx": ("Phoenix, Arizona (US)", NORTH_AMERICA),
    "qro": ("Querétaro, Mexico", NORTH_AMERICA),
    "scl": ("Santiago, Chile", SOUTH_AMERICA),
    "sea": ("Seattle, Washington (US)", NORTH_AMERICA),
    "sin": ("Singapore, Singapore", ASIA_PACIFIC),
    "sjc": ("San Jose, California (US)", NORTH_AMERICA),
    "syd": ("Sydney, Australia", ASIA_PACIFIC),
    "waw": ("Warsaw, Poland", EUROPE),
    "yul": ("Montreal, Canada", NORTH_AMERICA),
    "yyz": ("Toronto, Canada", NORTH_AMERICA),
}

REGIONS = frozenset(REGION_INFO)


def deprecated(st: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(st.get("deprecated_regions") or ())


def offered(st: Mapping[str, Any]) -> frozenset[str]:
    """The codes ``--region`` may name: known and not deprecated."""
    return REGIONS - deprecated(st)
