"""``fly volumes create|list`` (aliases ``volume``, ``vol``; ``ls``)."""

from __future__ import annotations

import re

from flyctl_sim import render, rollout, shapes
from flyctl_sim.cobra import BOOL, INT, Args, Command, Flag, exact
from flyctl_sim.commands.common import APP_FLAGS, JSON, NOT_INTERACTIVE, YES
from flyctl_sim.errors import FlyError
from flyctl_sim.invocation import Invocation
from flyctl_sim.regions import offered

MAX_SIZE_GB = 500
# The Machines API checks volume names, not flyctl (volumes/create.go runCreate sends the name as given).
# The rule is from users' reports, not a source: alphanumerics and underscores (terraform-provider-fly#213),
# at most 30 (CurateLabs/graphforge#884). The refusal texts below are the simulator's; fly-go
# flaps_volumes.go CreateVolume prefixes the API's with "failed to create volume: ".
VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,30}$")


def run_create(inv: Invocation) -> None:
    """flyctl ``internal/command/volumes/create.go`` ``runCreate``: the confirmation first
    (``confirmVolumeCreate``: skipped with ``--yes``, with ``--count`` above 1, or when a volume of that name
    exists; else a warning on stderr and, without a terminal, an error), then the region (``prompt.Region``),
    then ``count`` volumes created one by one (a count below 1 creates nothing)."""
    app = inv.app()
    name = inv.args[0]
    live = rollout.live_volumes(app)
    count = inv.flag("count")
    if not inv.flag("yes") and count <= 1 and not any(v["name"] == name for v in live):
        inv.warn(
            "Warning! Every volume is pinned to a specific physical host. You should create two or more "
            "volumes "
            "per application to avoid downtime. Learn more at https://fly.io/docs/volumes/overview/"
        )
        raise FlyError(NOT_INTERACTIVE.format("yes flag"))
    region = inv.flag("region") or inv.env.get("FLY_REGION", "")
    if not region:
        raise FlyError(NOT_INTERACTIVE.format("region code"))
    if region not in offered(inv.state):  # prompt.go Region: deprecated ones are filtered out first
        raise FlyError(f"region {region} not found")
    if not VOLUME_NAME_RE.match(name):
        raise FlyError(
            "failed to create volume: Name may only contain alphanumeric characters and underscores, at most "
            "30 characters"
        )
    size = inv.flag("size")
    if size < 1 or size > MAX_SIZE_GB:
        # The API's limits (fly docs: default 1, max 500); the text is the simulator's.
        raise FlyError(f"failed to create volume: size_gb must be between 1 and {MAX_SIZE_GB}")
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
    """flyctl ``internal/command/volumes/list.go``: fly-go ``GetVolumes`` hides volumes in a destroyed state
    (``flaps_volumes.go`` ``destroyedVolumeStates``); ``--all`` (``GetAllVolumes``) shows them."""
    app = inv.app()
    rollout.tick_unbind(app)
    volumes = app["volumes"] if inv.flag("all") else rollout.live_volumes(app)
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


def run_destroy(inv: Invocation) -> None:
    """flyctl ``internal/command/volumes/destroy.go`` ``runDestroy``: each id in turn; without ``--yes``
    and no terminal the confirmation fails (after a warning on stderr); the API refuses a volume still
    attached (message quoted by a Fly engineer in superfly/docs#2226). A destroyed volume goes to
    ``scheduling_destroy`` and leaves ``volumes list``: the state after a delete is the API's, not in
    flyctl's source; any of fly-go's ``destroyedVolumeStates`` hides it, the simulator takes the first."""
    app_name = (
        inv.parsed.values.get("app") or inv.env.get("FLY_APP", "") or str(inv.local_config().get("app") or "")
    )
    if not inv.args and not app_name:
        raise FlyError("volume ID or app required")
    if not inv.args:
        raise FlyError(
            "volume ID must be specified when not running interactively"
        )  # volumes.go selectVolume
    if not app_name:
        owners = [a for a in inv.state["apps"].values() if any(v["id"] == inv.args[0] for v in a["volumes"])]
        if not owners:
            # fly-go resource_volumes.go GetAppNameFromVolume returns the GraphQL error as it is; the text is
            # the API's, modelled on its "Could not find App" (quoted in superfly/flyctl#1703).
            raise FlyError(f'Could not find Volume "{inv.args[0]}"')
        app_name = owners[0]["name"]
    app = inv.app(app_name)
    rollout.tick_unbind(app)
    for vol_id in inv.args:
        volume = next((v for v in app["volumes"] if v["id"] == vol_id), None)
        if not inv.flag("yes"):
            if volume is None:
                # confirmVolumeDelete: fly-go GetVolume "failed to get volume %s: %w"; "volume not found" is
                # the API's text, matched by flyctl's own test/preflight/fly_postgres_test.go.
                raise FlyError(f"failed to get volume {vol_id}: volume not found")
            same = sum(1 for v in rollout.live_volumes(app) if v["name"] == volume["name"])
            if same <= 2:
                inv.warn(
                    "Warning! Every volume is pinned to a specific physical host. You should create two or "
                    "more "
                    f"volumes per application. Deleting this volume will leave you with {same - 1} "
                    "volume(s) for "
                    "this application, and it is not reversible.  Learn more at "
                    "https://fly.io/docs/volumes/overview/"
                )
            else:
                inv.warn("Deleting a volume is not reversible.")
            raise FlyError(NOT_INTERACTIVE.format("yes flag"))
        if volume is None or volume["state"] in rollout.DESTROYED_VOLUME_STATES:
            # runDestroy "failed destroying volume: %w" around fly-go DeleteVolume "failed to destroy volume
            # %s: %w"; the API's "volume not found" as above (for a destroyed one too: an assumption).
            raise FlyError(f"failed destroying volume: failed to destroy volume {vol_id}: volume not found")
        if volume["attached_machine_id"]:
            raise FlyError(
                f"failed destroying volume: failed to destroy volume {vol_id}: failed_precondition: volume "
                "is "
                f"currently bound to machine: {volume['attached_machine_id']}"
            )
        volume["state"] = "scheduling_destroy"
        inv.print(f"Destroyed volume ID: {vol_id} name: {volume['name']}")


def command() -> Command:
    volumes = Command("volumes", "Manage Fly Volumes.", aliases=("volume", "vol", "v"))
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
        Command(
            "destroy",
            "Destroy one or more volumes.",
            usage="<volume id> ...",
            aliases=("delete", "rm"),
            flags=(YES, *APP_FLAGS),
            args=Args(0, None),
            run=run_destroy,
        ),
    )
    return volumes
