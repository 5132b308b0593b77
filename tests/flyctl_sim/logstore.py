"""App log lines kept in state (what ``fly logs`` prints); deploys append to them."""

from __future__ import annotations

from typing import Any

from flyctl_sim import clock
from flyctl_sim.state import State


def append(
    state: State,
    app: str,
    message: str,
    *,
    instance: str = "",
    region: str = "iad",
    level: str = "info",
) -> dict[str, Any]:
    state["log_seq"] = int(state.get("log_seq", 0)) + 1
    entry = {
        "seq": state["log_seq"],
        "timestamp": clock.rfc3339_nano(),
        "instance": instance,
        "region": region,
        "level": level,
        "message": message,
        "meta": {"event": {"provider": "app"}, "instance": instance, "region": region},
    }
    state.setdefault("logs", {}).setdefault(app, []).append(entry)
    return entry


def entries(
    state: State, app: str, *, after: int = 0, machine: str = "", region: str = ""
) -> list[dict[str, Any]]:
    return [
        e
        for e in state.get("logs", {}).get(app, [])
        if e["seq"] > after
        and (not machine or e["instance"] == machine)
        and (not region or e["region"] == region)
    ]
