"""``fly scale count``: flyctl ``internal/command/scale/count.go`` (``newScaleCount``, ``runScaleCount``,
``parseGroupCounts``), ``count_machines.go`` (``runMachinesScaleCount``, ``computeActions``,
``convergeGroupCounts``, ``launchMachine``, ``destroyMachine``) and ``machine_defaults.go``.

What it does, from that source:

* The config is the DEPLOYED one (``appconfig.FromRemoteApp``), never the local fly.toml; a never-deployed
  app with no machines fails ("could not create a fly.toml from any machines"), one without a complete
  release fails ("this app has no complete releases").
* Counts are per process group and TOTAL over the regions acted on: ``--region`` (comma list), else every
  region with a machine of the app, else the primary region. Machines are added round-robin over those
  regions (``--max-per-region`` caps them) and removed starting from the SECOND region in the list.
* A new machine clones the group's FIRST machine config (its image and release included), or, for a group
  without machines, the latest complete release's image. A mount takes an unattached same-named volume in
  that region (unless ``--with-new-volumes``), else a new volume is CREATED: never an error.
* Scaling down destroys machines (kill) in the order the API lists them; their volumes are kept, detached.
* Nothing happens without ``--yes`` when there is no terminal: the plan is printed, then the error.
"""

from __future__ import annotations

import contextlib
import copy
import re
from typing import Any

from flyctl_sim import appconfig, clock, rollout
from flyctl_sim.cobra import BOOL, INT, STRING_ARRAY, Command, Flag, at_least
from flyctl_sim.commands.common import APP_FLAGS, VM_SIZE_FLAGS
from flyctl_sim.errors import FlyError
from flyctl_sim.invocation import Invocation
from flyctl_sim.regions import REGIONS

NO_RELEASE = "this app has no complete releases. Run `fly deploy` to create one and rerun this command"
# appconfig/remote.go getAppV2ConfigFromMachines around from_machine_set.go FromAppAndMachineSet
NO_CONFIG = (
    "failed to grab app config from existing machines, error: could not create a fly.toml from any "
    "machines :-(\n"
)
MAX_PER_REGION = "the number of regions by the maximum machines per region is fewer than the expected total"


def _atoi(text: str) -> int:
    """Go ``strconv.Atoi``."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise FlyError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise FlyError(f'strconv.Atoi: parsing "{text}": value out of range')
    return value


def parse_group_counts(args: list[str], default_group: str) -> dict[str, tuple[int, int]]:
    """``count.go`` ``parseGroupCounts``: ``N`` (one argument) for the default group, else ``GROUP=N``
    pairs; a leading ``+``/``-`` makes the count relative (``+0``/``-0`` are invalid). Values:
    (absolute, relative)."""
    groups: dict[str, tuple[int, int]] = {}

    def apply(group: str, text: str) -> None:
        number = _atoi(text)
        if text.startswith(("+", "-")):
            if number == 0:
                raise FlyError(f"invalid relative scale count: {text}")
            groups[group] = (0, number)
        else:
            groups[group] = (number, 0)

    if len(args) == 1:
        with contextlib.suppress(FlyError):  # "fall-through on error": the argument is then read as GROUP=N
            apply(default_group, args[0])
    if not groups:
        for arg in args:
            parts = arg.split("=")
            if len(parts) != 2:
                raise FlyError(f"'{arg}' is not a valid process=count option")
            apply(parts[0], parts[1])
    return groups


def converge(
    expected: int, current: dict[str, int], regions: list[str], max_per_region: int
) -> dict[str, int]:
    """``count_machines.go`` ``convergeGroupCounts``, step for step (additions cycle the regions from the
    first; removals start at regions[1 % n], "because the region list tend to have the primary region
    first")."""
    diffs: dict[str, int] = {}
    if not regions:
        regions = list(current)
    regions = list(dict.fromkeys(regions))
    if max_per_region >= 0:
        if len(regions) * max_per_region < expected:
            raise FlyError(MAX_PER_REGION)
        for region in regions:
            if current.get(region, 0) > max_per_region:
                diffs[region] = max_per_region - current[region]
    diff = expected - sum(current.get(r, 0) + diffs.get(r, 0) for r in regions)
    idx = 0
    while diff > 0:
        region = regions[idx % len(regions)]
        if max_per_region < 0 or current.get(region, 0) + diffs.get(region, 0) < max_per_region:
            diffs[region] = diffs.get(region, 0) + 1
            diff -= 1
        idx += 1
    idx = -1
    while diff < 0:
        region = regions[-idx % len(regions)]
        if current.get(region, 0) + diffs.get(region, 0) > 0:
            diffs[region] = diffs.get(region, 0) - 1
            diff += 1
        idx -= 1
    return diffs


def guest_size(config: dict[str, Any]) -> str:
    """fly-go ``MachineGuest.ToSize``: ``shared-cpu-Nx`` / ``performance-Nx``."""
    guest = config.get("guest") or {}
    kind = guest.get("cpu_kind", "shared")
    if kind in ("shared", "performance"):
        return f"{'shared-cpu' if kind == 'shared' else 'performance'}-{guest.get('cpus', 1)}x"
    return "unknown"


class Action:
    """``count_machines.go`` ``planItem``."""

    def __init__(
        self,
        group: str,
        region: str,
        delta: int,
        machines: list[dict[str, Any]],
        config: dict[str, Any],
        volumes: list[dict[str, Any]],
        create_volume: dict[str, Any] | None,
    ) -> None:
        self.group, self.region, self.delta = group, region, delta
        self.machines, self.config, self.volumes, self.create_volume = (
            machines,
            config,
            volumes,
            create_volume,
        )

    def volumes_delta(self) -> int:
        return self.delta - len(self.volumes) if self.create_volume is not None else 0

    def size(self) -> str:
        if self.delta > 0 or not self.machines:
            return guest_size(self.config)
        return guest_size(self.machines[0]["config"])


def run_count(inv: Invocation) -> None:
    app = inv.app()
    cfg = app.get("config")
    machines = [m for m in rollout.active(app) if m.get("config")]
    if not cfg:
        if not machines:
            raise FlyError(NO_CONFIG)
        cfg = {"processes": {rollout.group_of(m): "" for m in machines}}  # FromAppAndMachineSet, roughly
    process_names = appconfig.process_groups(cfg)
    default_group = inv.flag("process-group") or "app"
    groups = parse_group_counts(inv.args, default_group)
    unknown = [g for g in groups if g not in process_names]
    if unknown:
        raise FlyError(
            f"Attempting to scale unknown process groups [{' '.join(unknown)}] but valid names are "
            f"[{' '.join(process_names)}].\n Use `fly scale count COUNT --process-group=NAME` \n or multi "
            "group "
            "syntax `fly scale count NAME1=COUNT1 NAME2=COUNT2 ...`"
        )
    # count_machines.go asks GetAppReleasesMachines(ctx, app, "complete", 1), but fly-go's
    # resource_releases.go GetAppReleasesMachines sets a $status variable its query never declares
    # (releasesUnprocessed(first: $limit)): the API ignores it, so this is the newest release of ANY status.
    if not app["releases"]:
        raise FlyError(NO_RELEASE)
    latest = max(app["releases"], key=lambda r: r["version"])
    regions = [r for r in inv.flag("region").split(",")] if inv.flag("region") else []
    if not regions:
        regions = list(dict.fromkeys(m["region"] for m in machines)) or [
            str(cfg.get("primary_region") or rollout.DEFAULT_REGION)
        ]
    actions = compute_actions(inv, app, cfg, machines, groups, regions, latest)
    for pair in inv.flag("env"):
        name, sep, value = pair.partition("=")
        if not sep:
            raise FlyError(f"failed parsing environment: '{pair}': must be in the format NAME=VALUE")
        for action in actions:
            action.config.setdefault("env", {})[name] = value
    if not actions:
        inv.print("App already scaled to desired state. No need for changes")
        return
    inv.print(f"App '{app['name']}' is going to be scaled according to this plan:")
    for action in actions:
        inv.print(
            f"{action.delta:+4d} machines for group '{action.group}' on region '{action.region}' of "
            f"size '{action.size()}'"
        )
        reuse, create = len(action.volumes), action.volumes_delta()
        where = f"group '{action.group}' in region '{action.region}'"
        if reuse > 0 and create > 0:
            inv.print(f"{create:+4d} volumes and {reuse} unattached volumes assigned to {where}")
        elif reuse > 0:
            inv.print(f"{reuse: 4d} unattached volumes to be assigned to {where}")
        elif create > 0:
            inv.print(f"{create:+4d} volumes  for {where}")
    if not inv.flag("yes"):
        # prompt.Confirmf without a terminal -> prompt.NonInteractiveError (note the leading dashes)
        raise FlyError("--yes flag must be specified when not running interactively")
    inv.print("Executing scale plan")
    now = clock.rfc3339()
    for action in actions:
        if action.delta > 0:
            for index in range(action.delta):
                machine = launch(inv, app, action, index, now)
                size = guest_size(machine["config"])
                line = f"  Created {machine['id']} group:{action.group} region:{action.region} size:{size}"
                if machine["config"].get("mounts"):
                    line += f" volume:{machine['config']['mounts'][0]['volume']}"
                inv.print(line)
        else:
            for machine in action.machines[: -action.delta]:
                rollout.destroy_machine(inv.state, app, machine)
                inv.print(
                    f"  Destroyed {machine['id']} group:{action.group} region:{action.region} "
                    f"size:{guest_size(machine['config'])}"
                )
    if rollout.autostop_enabled(inv.state, app["name"]):
        rollout.proxy_idle(inv.state, app)


def compute_actions(
    inv: Invocation,
    app: dict[str, Any],
    cfg: appconfig.Config,
    machines: list[dict[str, Any]],
    groups: dict[str, tuple[int, int]],
    regions: list[str],
    latest: dict[str, Any],
) -> list[Action]:
    """``count_machines.go`` ``computeActions`` (Go walks maps in random order; the simulator goes by group,
    then by the regions list)."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for m in machines:
        by_group.setdefault(rollout.group_of(m), []).append(m)
    expected = {
        g: max((len(by_group.get(g, [])) + rel) if rel else absolute, 0)
        for g, (absolute, rel) in groups.items()
    }
    max_per_region = inv.flag("max-per-region")
    with_new = inv.flag("with-new-volumes")
    pool: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not with_new:  # machine_defaults.go newDefaults: unattached volumes (host ok), by name and region
        for volume in rollout.live_volumes(app):
            if not volume["attached_machine_id"] and volume.get("host_status") == "ok":
                pool.setdefault((volume["name"], volume["region"]), []).append(volume)
    sizes: dict[str, int] = {}
    for volume in rollout.live_volumes(app):
        sizes[volume["name"]] = max(sizes.get(volume["name"], 0), int(volume["size_gb"]))
    actions: list[Action] = []
    for group, count in expected.items():
        existing = by_group.get(group, [])
        per_region: dict[str, list[dict[str, Any]]] = {}
        for m in existing:
            per_region.setdefault(m["region"], []).append(m)
        if existing:
            config = copy.deepcopy(existing[0]["config"])
            config.pop("standbys", None)  # "Nullify standbys, no point on having more than one"
            config.get("env", {}).pop("FLY_STANDBY_FOR", None)
            health = rollout.sim(existing[0]).get("health", "pass")
        else:  # machine_defaults.go ToMachineConfig: the app config at the latest complete release
            config = rollout.machine_config(
                cfg, group, latest["image_ref"], latest, str(cfg.get("primary_region") or "")
            )
            mounts = appconfig.mounts_for(cfg, group)
            if mounts:
                name = mounts[0]["source"]
                config["mounts"] = [
                    {
                        "encrypted": True,
                        "path": mounts[0]["destination"],
                        "size_gb": sizes.get(name, 1),
                        "name": name,
                    }
                ]
            health = rollout.plan_verdict(inv.state, app["name"], latest["image_ref"], consume_plan=False)
        current = {r: len(ms) for r, ms in per_region.items()}
        diffs = converge(count, current, regions, max_per_region)
        order = [r for r in regions if r in diffs] + [r for r in diffs if r not in regions]
        for region in order:
            delta = diffs[region]
            mounts = config.get("mounts") or []
            volumes: list[dict[str, Any]] = []
            create = None
            if mounts and delta > 0:
                available = pool.get((mounts[0]["name"], region), [])
                volumes, pool[(mounts[0]["name"], region)] = available[:delta], available[delta:]
                create = {
                    "name": mounts[0]["name"],
                    "region": region,
                    "size_gb": mounts[0].get("size_gb") or sizes.get(mounts[0]["name"], 1),
                    "require_unique_zone": len(per_region.get(region, [])) + delta > 1,
                }
            action = Action(
                group, region, delta, per_region.get(region, []), copy.deepcopy(config), volumes, create
            )
            action.health = health  # type: ignore[attr-defined]
            actions.append(action)
    return actions


def launch(inv: Invocation, app: dict[str, Any], action: Action, index: int, now: str) -> dict[str, Any]:
    """``count_machines.go`` ``launchMachine``: the volume (reused, else created), then the machine,
    started."""
    if action.region not in REGIONS:
        # fly-go flaps_machines.go Launch wraps "failed to launch VM: %w" (count_machines.go returns it as
        # is); "region X not found" is the simulator's stand-in for the Machines API's text, which no public
        # source quotes (flyctl's own prompt.go Region uses the same words for a region it does not offer).
        raise FlyError(f"failed to launch VM: region {action.region} not found")
    config = copy.deepcopy(action.config)
    volume = None
    if config.get("mounts"):
        if index < len(action.volumes):
            volume = action.volumes[index]
        elif action.create_volume is not None:
            spec = action.create_volume
            inv.print(f"  Creating volume {spec['name']} region:{spec['region']} size:{spec['size_gb']}GiB")
            volume = rollout.new_volume(app["name"], spec["name"], spec["region"], int(spec["size_gb"]))
            app["volumes"].append(volume)
        else:
            raise FlyError(
                "Launching the machine requires a volume but there is no volume to attach or create"
            )
        config["mounts"] = [{**config["mounts"][0], "volume": volume["id"], "size_gb": volume["size_gb"]}]
    machine = rollout.new_machine(action.region, config, now)
    rollout.set_image(machine, config.get("image", ""), "")
    if volume is not None:
        rollout.attach(volume, machine["id"])
    app["machines"].append(machine)
    rollout.run_machine(machine, getattr(action, "health", "pass"), now)
    return machine


def command() -> Command:
    scale = Command("scale", "Scale app resources")
    scale.add(
        Command(
            "count",
            "Change an app's VM count to the given value",
            usage="[count]",
            flags=(
                *APP_FLAGS,
                Flag("yes", BOOL, "y", usage="Accept all confirmations", aliases=("auto-confirm",)),
                Flag("process-group", shorthand="g", usage="The process group to scale", aliases=("group",)),
                Flag("max-per-region", INT, default=-1, usage="Max number of VMs per region"),
                Flag(
                    "region",
                    shorthand="r",
                    usage="Comma separated list of regions to act on. Defaults to all regions where there "
                    "is at "
                    "least one machine running for the app",
                ),
                Flag(
                    "with-new-volumes",
                    BOOL,
                    usage="New machines each get a new volumes even if there are unattached volumes "
                    "available",
                ),
                Flag(
                    "from-snapshot",
                    usage="New volumes are restored from snapshot, use 'last' for most recent snapshot. The "
                    "default "
                    "is an empty volume",
                ),
                *VM_SIZE_FLAGS,
                Flag(
                    "env",
                    STRING_ARRAY,
                    "e",
                    usage="Set of environment variables in the form of NAME=VALUE pairs.",
                ),
            ),
            args=at_least(1),
            run=run_count,
        )
    )
    return scale
