"""``fly logs``: print the app's log lines from state, then keep polling.

Faithful to flyctl: without ``--no-tail`` it tails forever; with ``--no-tail`` and no logs at all it keeps
polling forever too (callers must bound it with a timeout). The state lock is only held while reading, so a
tailing ``logs`` never blocks other invocations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flyctl_sim import logstore, render
from flyctl_sim.cobra import BOOL, Command, Flag
from flyctl_sim.commands.common import APP_FLAGS, JSON
from flyctl_sim.invocation import Invocation
from flyctl_sim.state import locked, read_unlocked

POLL_SECONDS = 0.25


def _emit(inv: Invocation, entries: list[dict[str, Any]]) -> None:
    for e in entries:
        if inv.json_output():
            inv.out.write(
                render.json_text(
                    {k: e[k] for k in ("level", "instance", "message", "region", "timestamp", "meta")}
                )
            )
        else:
            inv.print(f"{e['timestamp']} app[{e['instance']}] {e['region']} [{e['level']}]{e['message']}")
    inv.out.flush()


def run(inv: Invocation) -> Callable[[], int] | None:
    app = inv.app()
    machine, region, no_tail = inv.flag("machine"), inv.flag("region"), inv.flag("no-tail")
    entries = logstore.entries(inv.state, app["name"], machine=machine, region=region)
    _emit(inv, entries)
    if no_tail and entries:
        return None
    after = int(inv.state.get("log_seq", 0))
    home, name = inv.home, app["name"]

    def poll() -> int:
        nonlocal after
        while True:
            time.sleep(POLL_SECONDS)
            with locked(home):
                state = read_unlocked(home)
            new = logstore.entries(state, name, after=after, machine=machine, region=region)
            after = max([after, *(e["seq"] for e in new)])
            _emit(inv, new)
            if no_tail and new:
                return 0

    return poll


def command() -> Command:
    return Command(
        "logs",
        "View app logs",
        flags=(
            *APP_FLAGS,
            Flag("no-tail", BOOL, "n", usage="Do not continually stream logs"),
            Flag("machine", shorthand="m", usage="Filter by machine ID"),
            Flag("region", shorthand="r", usage="The target region (see 'flyctl platform regions')"),
            JSON,
        ),
        run=run,
    )
