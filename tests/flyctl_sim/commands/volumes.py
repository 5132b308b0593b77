"""``fly volumes create|list`` (aliases ``volume``, ``vol``; ``ls``)."""

from __future__ import annotations

import re

from flyctl_sim import render, rollout, shapes
from flyctl_sim.cobra import BOOL, INT, Command, Flag, exact
from flyctl_sim.commands.common import APP_FLAGS, JSON, NOT_INTERACTIVE, YES
from flyctl_sim.errors import FlyError
from flyctl_sim.invocation import Invocation
from flyctl_sim.regions import REGIONS

MAX_SIZE_GB = 500
# UNVERIFIED (third-party reports): alphanumerics and underscores, at most 30 characters.
VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,30}$")


def run_create(inv: Invocation) -> None:
    app = inv.app()
    name = inv.args[0]
    region = inv.flag("region") or inv.env.get("FLY_REGION", "")
    if not region:
        raise FlyError(NOT_INTERACTIVE.format("region code"))
    if region not in REGIONS:
        raise FlyError(f"region {region} not found")
    live = [
        v for v in app["volumes"] if v["state"] not in ("scheduling_destroy", "pending_destroy", "destroyed")
    ]
    # flyctl only asks for confirmation when no volume of that name exists yet (the "you should create two or
    # more volumes" warning); without a terminal that question is an error unless -y was given.
    if not inv.flag("yes") and not any(v["name"] == name for v in live):
        raise FlyError(NOT_INTERACTIVE.format("yes flag"))
    if not VOLUME_NAME_RE.match(name):
        # UNVERIFIED wording of the API's refusal.
        raise FlyError("Name may only contain alphanumeric characters and underscores, at most 30 characters")
    size = inv.flag("size")
    if size < 1 or size > MAX_SIZE_GB:
        # UNVERIFIED wording; the limits are documented (default 1, max 500).
        raise FlyError(f"size_gb must be between 1 and {MAX_SIZE_GB}")
    count = inv.flag("count")
    if count < 1:
        raise FlyError("count must be at least 1")
    for _ in range(count):
        # flyctl never de-duplicates: an existing name creates ANOTHER volume.
        volume = rollout.new_volume(
            app["name"],
            name,
            region,
            size,
            encrypted=not inv.flag("no-encryption"),
            retention=inv.flag("snapshot-retention"),
        )
        app["volumes"].append(volume)
        if inv.json_output():
            inv.print_json(shapes.volume_object(volume))
        else:
            inv.out.write(
                render.key_values(
                    [
                        ("ID", volume["id"]),
                        ("Name", volume["name"]),
                        ("App", app["name"]),
                        ("Region", volume["region"]),
                        ("Zone", volume["zone"]),
                        ("Size GB", volume["size_gb"]),
                        ("Encrypted", str(volume["encrypted"]).lower()),
                        ("Created at", volume["created_at"]),
                        ("Snapshot retention", volume["snapshot_retention"]),
                        ("Scheduled snapshots", "true"),
                    ]
                )
            )


def run_list(inv: Invocation) -> None:
    app = inv.app()
    volumes = [v for v in app["volumes"] if inv.flag("all") or v["state"] != "destroyed"]
    if inv.json_output():
        inv.print_json([shapes.volume_object(v) for v in volumes])
        return
    rows = [
        [
            v["id"],
            v["state"],
            v["name"],
            f"{v['size_gb']}GB",
            v["region"],
            v["zone"],
            str(v["encrypted"]).lower(),
            v["attached_machine_id"] or "",
            v["created_at"],
        ]
        for v in volumes
    ]
    headers = ["ID", "State", "Name", "Size", "Region", "Zone", "Encrypted", "Attached VM", "Created At"]
    inv.out.write(render.table(headers, rows))


def command() -> Command:
    volumes = Command("volumes", "Manage Fly Volumes.", aliases=("volume", "vol"))
    volumes.add(
        Command(
            "create",
            "Create a new volume for an app.",
            usage="<volume name>",
            flags=(
                *APP_FLAGS,
                Flag("size", INT, "s", default=1, usage="The size of volume in gigabytes"),
                Flag("region", shorthand="r", usage="The target region"),
                YES,
                Flag("count", INT, "n", default=1, usage="The number of volumes to create"),
                Flag("no-encryption", BOOL, usage="Do not encrypt the volume contents"),
                Flag("snapshot-retention", INT, default=5, usage="Snapshot retention in days"),
                Flag(
                    "require-unique-zone",
                    BOOL,
                    default=True,
                    usage="Place the volume in a separate hardware zone",
                ),
                JSON,
            ),
            args=exact(1),
            run=run_create,
        ),
        Command(
            "list",
            "List the volumes associated with an app.",
            aliases=("ls",),
            flags=(
                *APP_FLAGS,
                Flag("all", BOOL, usage="Show all volumes including those in destroyed states"),
                JSON,
            ),
            run=run_list,
        ),
    )
    return volumes
