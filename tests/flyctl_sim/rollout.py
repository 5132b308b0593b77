"""Rolling a release out to an app's machines: shared by ``deploy`` and by secrets changes.

One machine per process group, created when missing and updated afterwards; machines of groups that left
fly.toml are destroyed. Health comes from the app's health plan (one entry per ``deploy``) and from image
patterns marked unhealthy. Fly never rolls back: an unhealthy image stays current on the machines.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from typing import Any, NamedTuple

from flyctl_sim import appconfig, clock, ids, logstore, shapes
from flyctl_sim.errors import FlyError
from flyctl_sim.health import HEALTHY, UNHEALTHY
from flyctl_sim.state import State

FLYCTL_VERSION_META = "flyctl_sim"
DEFAULT_REGION = "iad"  # UNVERIFIED: a deploy with no primary_region anywhere lands in iad (Ashburn).


class Outcome(NamedTuple):
    release: dict[str, Any]
    healthy: bool
    machines: list[dict[str, Any]]
    created: list[str]
    updated: list[str]


def _size_gb(value: Any) -> int:
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+)\s*(gb|g)?\s*", str(value or "1"), re.IGNORECASE)
    return int(match.group(1)) if match else 1


def new_volume(
    app: str, name: str, region: str, size: int, *, encrypted: bool = True, retention: int = 5
) -> dict[str, Any]:
    return {
        "id": ids.volume_id(),
        "name": name,
        "app": app,
        "state": "created",
        "size_gb": size,
        "region": region,
        "zone": ids.node_id(4).lower(),
        "encrypted": encrypted,
        "attached_machine_id": None,
        "attached_alloc_id": None,
        "created_at": clock.rfc3339(),
        "host_dedication_id": "",
        "snapshot_retention": retention,
        "auto_backup_enabled": True,
    }


def health_timeout(mid: str) -> FlyError:
    """The error flyctl gives when a machine's health checks never pass."""
    return FlyError(
        f"failed to update machine {mid}: Unrecoverable error: timeout reached waiting for health checks to "
        f"pass for machine {mid}: failed to get VM {mid}: context deadline exceeded"
    )


def plan_health(state: State, app: str, image_ref: str, *, consume_plan: bool) -> bool:
    """One health-plan entry per deploy (empty plan: healthy); a match of an unhealthy image pattern fails."""
    healthy = True
    plan = state.get("health_plans", {}).get(app) or []
    if consume_plan and plan:
        entry = str(plan.pop(0)).lower()
        healthy = entry in HEALTHY or entry not in UNHEALTHY
    if any(fnmatch.fnmatchcase(image_ref, pattern) for pattern in state.get("unhealthy_images", [])):
        healthy = False
    return healthy


def _check_states(config_checks: dict[str, Any], healthy: bool, now: str) -> list[dict[str, Any]]:
    out = []
    for name, check in config_checks.items():
        port = check.get("port", 8080)
        if healthy:
            output = (
                f"GET {check.get('path', '/')} on port {port}: 200 OK"
                if check.get("type") == "http"
                else ("Success")
            )
        else:
            output = f"dial tcp [::1]:{port}: connect: connection refused"
        out.append(
            {
                "name": name,
                "status": "passing" if healthy else "critical",
                "output": output,
                "updated_at": now,
            }
        )
    return out


def plan_volumes(
    state: State, app: dict[str, Any], cfg: appconfig.Config, region: str, *, first_deploy: bool
) -> dict[str, dict[str, Any]]:
    """For every process group that needs a NEW machine with a mount: the volume it will attach.
    On the first deploy missing volumes are created in ``region``; later a free same-named one must exist."""
    have = {m["config"]["metadata"]["fly_process_group"] for m in app["machines"]}
    chosen: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    missing: list[str] = []
    for group in appconfig.process_groups(cfg):
        if group in have:
            continue
        for mount in appconfig.mounts_for(cfg, group)[:1]:
            free = [
                v
                for v in app["volumes"]
                if v["name"] == mount["source"]
                and v["region"] == region
                and not v["attached_machine_id"]
                and v["id"] not in taken
            ]
            if free:
                chosen[group] = free[0]
            elif first_deploy:
                volume = new_volume(app["name"], mount["source"], region, _size_gb(mount.get("initial_size")))
                app["volumes"].append(volume)
                chosen[group] = volume
            else:
                missing.append(
                    f"Process group '{group}' needs volumes with name '{mount['source']}' to fulfill mounts "
                    f"defined in fly.toml; Run `fly volume create {mount['source']} -r {region}` for the "
                    f"following regions and counts: {region}=1"
                )
                continue
            taken.add(chosen[group]["id"])
    if missing:
        raise FlyError(missing[0])
    return chosen


def roll_out(
    state: State,
    app: dict[str, Any],
    *,
    cfg: appconfig.Config,
    image_ref: str,
    image_digest: str,
    strategy: str,
    reason: str,
    description: str,
    user_email: str,
    consume_plan: bool,
    region: str,
) -> Outcome:
    """Create release n+1, bring every process group's machine to it, record health, roll secrets out."""
    first_deploy = not app["deployed"]
    volumes = plan_volumes(state, app, cfg, region, first_deploy=first_deploy)
    version = max((r["version"] for r in app["releases"]), default=0) + 1
    now = clock.rfc3339()
    release = {
        "id": ids.node_id(),
        "version": version,
        "status": "running",
        "reason": reason,
        "description": description,
        "strategy": strategy,
        "image_ref": image_ref,
        "user_email": user_email,
        "created_at": now,
        "evaluation_id": ids.node_id(),
        "healthy": False,
        "metadata": None,
    }
    app["releases"].append(release)
    healthy = plan_health(state, app["name"], image_ref, consume_plan=consume_plan)
    groups = appconfig.process_groups(cfg)
    processes = cfg.get("processes") if isinstance(cfg.get("processes"), dict) else {}
    created: list[str] = []
    updated: list[str] = []
    keep: list[dict[str, Any]] = []
    for machine in app["machines"]:
        if machine["config"]["metadata"]["fly_process_group"] in groups:
            keep.append(machine)
        else:
            for volume in app["volumes"]:
                if volume["attached_machine_id"] == machine["id"]:
                    volume["attached_machine_id"] = None
            logstore.append(
                state, app["name"], "Machine destroyed", instance=machine["id"], region=machine["region"]
            )
    app["machines"] = keep
    by_group = {m["config"]["metadata"]["fly_process_group"]: m for m in keep}
    for group in groups:
        machine = by_group.get(group)
        if machine is None:
            mid = ids.machine_id()
            machine = {
                "id": mid,
                "name": ids.friendly_name(),
                "state": "started",
                "region": region,
                "instance_id": ids.ulid(),
                "private_ip": ids.private_ip(mid),
                "created_at": now,
                "updated_at": now,
                "config": {},
                "image_ref": {},
                "host_status": "ok",
                "checks": [],
                "events": [],
            }
            volume = volumes.get(group)
            mounts = []
            if volume is not None:
                mount = appconfig.mounts_for(cfg, group)[0]
                volume["attached_machine_id"] = mid
                volume["attached_alloc_id"] = None
                mounts.append({"volume": volume["id"], "path": mount["destination"], "name": volume["name"]})
            machine["config"]["mounts"] = mounts
            app["machines"].append(machine)
            created.append(mid)
        else:
            updated.append(machine["id"])
        command = processes.get(group) if processes else None
        checks = appconfig.machine_checks(cfg, group)
        config = machine["config"]
        config.update(
            {
                "env": {**appconfig.env(cfg), "FLY_PROCESS_GROUP": group, "PRIMARY_REGION": region},
                "init": {"cmd": shlex.split(command) if isinstance(command, str) else command or None},
                "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
                "metadata": {
                    "fly_platform_version": "v2",
                    "fly_process_group": group,
                    "fly_release_id": release["id"],
                    "fly_release_version": str(version),
                    "fly_flyctl_version": FLYCTL_VERSION_META,
                },
                "services": [
                    {k: v for k, v in svc.items() if k != "_from"}
                    for svc in appconfig.services(cfg)
                    if not svc["processes"] or group in svc["processes"]
                ],
                "checks": checks,
                "image": image_ref,
                "restart": {"policy": "on-failure"},
            }
        )
        image = shapes.parse_image_ref(image_ref)
        image["digest"] = image_digest or ids.image_digest(image_ref)
        machine["image_ref"] = image
        machine["state"] = "started"
        machine["updated_at"] = now
        machine["checks"] = _check_states(checks, healthy, now)
        machine["events"] = [
            {
                "type": "launch" if machine["id"] in created else "update",
                "status": "created",
                "source": "user",
                "timestamp": now,
            },
            {"type": "start", "status": "started", "source": "flyd", "timestamp": now},
        ]
        _log_boot(state, app["name"], machine, image_ref, healthy)
    release["status"] = "complete" if healthy else "failed"
    release["healthy"] = healthy
    for secret in app["secrets"].values():
        secret["status"] = "Deployed"
    app["deployed"] = True
    app["config"] = cfg
    app["image"] = image_ref
    return Outcome(release, healthy, [m for m in app["machines"]], created, updated)


def _log_boot(state: State, app: str, machine: dict[str, Any], image_ref: str, healthy: bool) -> None:
    mid, region = machine["id"], machine["region"]
    for line in (
        f"Pulling container image {image_ref}",
        f"Successfully prepared image {image_ref}",
        "Configuring firecracker",
        "Machine started in 1.042s",
    ):
        logstore.append(state, app, line, instance=mid, region=region)
    if healthy:
        logstore.append(state, app, "Listening on 0.0.0.0:8080", instance=mid, region=region)
    else:
        logstore.append(
            state,
            app,
            "Health check on port 8080 has failed. Your app is not responding properly.",
            instance=mid,
            region=region,
            level="error",
        )
