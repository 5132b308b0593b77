"""Injected failures and slowness, matched against the canonical command path (``secrets import``)."""

from __future__ import annotations

import fnmatch
from typing import Any

from flyctl_sim.state import State


def take(state: State, command: str) -> tuple[dict[str, Any] | None, float]:
    """Consume one use of the first matching fault; return it (or None) and the total delay to sleep."""
    chosen: dict[str, Any] | None = None
    for fault in state.get("faults", []):
        if fault["times"] != 0 and fnmatch.fnmatchcase(command, fault["command"]):
            chosen = dict(fault)
            if fault["times"] > 0:
                fault["times"] -= 1
            break
    state["faults"] = [f for f in state.get("faults", []) if f["times"] != 0]
    delay = sum(
        float(seconds)
        for pattern, seconds in state.get("delays", {}).items()
        if fnmatch.fnmatchcase(command, pattern)
    )
    if chosen is not None:
        delay += float(chosen.get("delay", 0.0))
    return chosen, delay


def message_text(fault: dict[str, Any]) -> str:
    text = str(fault["message"])
    return text if text.endswith("\n") else text + "\n"
