"""Health-plan vocabulary, the release current on an app's machines, and what the app's /health answers."""

from __future__ import annotations

from typing import Any

from flyctl_sim.state import State

HEALTHY = ("pass", "passing", "healthy", "ok")
UNHEALTHY = ("fail", "failing", "unhealthy", "critical")
CRASHED = (
    "crash",
    "crashed",
    "crashing",
)  # the app exits; flyd gives up restarting: stopped, checks critical
FAILED_STATE = ("failed",)  # the machine never starts: state "failed"


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
    """What ``GET /<app>/health`` would answer now (``rollout.route`` without starting anything):
    True for 200, False for 503, None for an unknown app (404)."""
    from flyctl_sim import rollout  # rollout imports this module's vocabulary

    code, _ = rollout.route(state, app_name, start=False)
    return None if code == 404 else code == 200
