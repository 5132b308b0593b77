"""Which release is current on an app's machines, and whether it is healthy (the health server's answer)."""

from __future__ import annotations

from typing import Any

from flyctl_sim.state import State

HEALTHY = ("pass", "passing", "healthy", "ok")
UNHEALTHY = ("fail", "failing", "unhealthy", "critical")


def current_release(app: dict[str, Any]) -> dict[str, Any] | None:
    """The latest release that is current on the app's machines (None before any machine exists)."""
    versions = [
        int(m["config"]["metadata"].get("fly_release_version", "0") or 0)
        for m in app.get("machines", [])
        if m.get("state") != "destroyed"
    ]
    if not versions:
        return None
    top = max(versions)
    releases: list[dict[str, Any]] = app.get("releases", [])
    for release in releases:
        if release["version"] == top:
            return release
    return None


def app_health(state: State, app_name: str) -> bool | None:
    """True/False for the current release's health; None when the app does not exist."""
    app = state["apps"].get(app_name)
    if app is None:
        return None
    release = current_release(app)
    return bool(release and release.get("healthy"))
