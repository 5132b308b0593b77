"""``fly releases``: the last 25 releases, newest first."""

from __future__ import annotations

from flyctl_sim import render, shapes
from flyctl_sim.cobra import BOOL, Command, Flag
from flyctl_sim.commands.common import APP_FLAGS, JSON
from flyctl_sim.invocation import Invocation

LIMIT = 25


def run(inv: Invocation) -> None:
    app = inv.app()
    releases = sorted(app["releases"], key=lambda r: r["version"], reverse=True)[:LIMIT]
    if inv.json_output():
        inv.print_json([shapes.release_object(inv.state, r) for r in releases])
        return
    headers = ["Version", "Status", "Description", "User", "Date"]
    rows = []
    for r in releases:
        row = [f"v{r['version']}", r["status"], r["description"], r["user_email"], r["created_at"]]
        if inv.flag("image"):
            row.append(r["image_ref"])
        rows.append(row)
    if inv.flag("image"):
        headers.append("Docker Image")
    inv.out.write(render.table(headers, rows))


def command() -> Command:
    return Command(
        "releases",
        "List app releases",
        flags=(
            *APP_FLAGS,
            Flag("image", BOOL, usage="Display the Docker image reference of the release"),
            JSON,
        ),
        run=run,
    )
