"""Releases rolled out to an app's machines: ``fly deploy`` and the restart that secrets changes trigger.

Every behaviour here follows flyctl v0.4.87's deploy code; the file and function are named beside it.
``internal/command/deploy/`` is abbreviated ``deploy/``. In order (``machines.go`` ``NewMachineDeployment``,
then ``machines_deploymachinesapp.go`` ``DeployMachinesApp``):

1. the app's Fly Launch machines (``ListFlyAppsMachines``: not destroyed), narrowed by ``--regions``,
   ``--exclude-regions``, ``--only-machines``, ``--exclude-machines``, ``--process-groups``;
2. a first deploy (app never deployed and no machine selected) provisions IPs and seed volumes;
3. volume checks, a new release, the release command;
4. machines of groups that left fly.toml are destroyed; a group with NO selected machine gets new ones in the
   primary region: with ``--ha`` (default) TWO when it has services and no mounts, one plus a standby when it
   has neither, one when it has a mount;
5. every selected machine is updated in place. A machine that was not ``started``/``starting``/``failed``
   is updated but LEFT as it was (stopped, suspended) and not waited for; its checks stay stale.

What a started machine's app does (its health) comes from the app's health plan (one entry per
``fly deploy``) and from image patterns marked unhealthy: ``pass``; ``fail`` (checks critical);
``crash`` (the app exits, flyd gives up: ``stopped`` with checks critical); ``failed`` (the machine never
starts: state ``failed``). Fly never rolls back: an unhealthy image stays on the machines.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from flyctl_sim import appconfig, clock, ids, logstore, render, shapes
from flyctl_sim.errors import FlyError
from flyctl_sim.health import CRASHED, FAILED_STATE, HEALTHY, UNHEALTHY
from flyctl_sim.state import State

FLYCTL_VERSION_META = "flyctl_sim"
# No primary_region anywhere: flyctl sends an empty region (machines_launchinput.go launchInputForLaunch) and
# the Machines API picks one, "the nearest available region" (its CreateMachineRequest schema; not in flyctl's
# source). Users far from Ashburn report iad (superfly/flyctl#1640, remix-run/indie-stack#213): the stand-in.
DEFAULT_REGION = "iad"
DEFAULT_MAX_UNAVAILABLE = 0.33  # deploy/machines.go DefaultMaxUnavailable
# fly-go machine_types.go (*Machine).IsActive: State != destroyed && State != destroying; ListActive and
# ListFlyAppsMachines (flaps/flaps_machines.go) keep the machines it is true for.
INACTIVE = ("destroyed", "destroying")
# fly-go flaps/flaps_volumes.go destroyedVolumeStates: GetVolumes hides these (`volumes list --all` shows).
DESTROYED_VOLUME_STATES = (
    "scheduling_destroy",
    "fork_cleanup",
    "waiting_for_detach",
    "pending_destroy",
    "destroying",
)

Emit = Callable[[str], None]


class Output(NamedTuple):
    """Where a rollout prints: ``out`` (flyctl's ``io.Out``, stdout) and ``err`` (``io.ErrOut``, stderr)."""

    out: Emit
    err: Emit


@dataclass
class DeployArgs:
    """``deploy/machines.go`` ``MachineDeploymentArgs``, the part the simulator models."""

    image_ref: str = ""
    digest: str = ""
    strategy: str = "rolling"
    ha: bool = True  # --ha
    skip_health: bool = False  # --detach
    skip_smoke: bool = False  # --detach or --smoke-checks=false
    skip_release_command: bool = False
    update_only: bool = False
    restart_only: bool = False  # secrets set/unset/import/deploy: same config, new release
    only_regions: frozenset[str] = frozenset()
    exclude_regions: frozenset[str] = frozenset()
    only_machines: frozenset[str] = frozenset()
    exclude_machines: frozenset[str] = frozenset()
    process_groups: frozenset[str] = frozenset()
    max_unavailable: float | None = None
    volume_initial_size: int = 0
    reason: str = "deploy"
    description: str = ""
    consume_plan: bool = True
    emit_release_json: bool = False
    user_email: str = ""


class Outcome(NamedTuple):
    release: dict[str, Any]
    created: list[str]
    updated: list[str]


# --- small helpers ----------------------------------------------------------------------------------------


def active(app: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in app["machines"] if m.get("state") not in INACTIVE]


def group_of(machine: dict[str, Any]) -> str:
    return str(machine["config"].get("metadata", {}).get("fly_process_group") or "app")


def formatted_id(machine: dict[str, Any]) -> str:
    """``internal/machine/leasable_machine.go`` ``FormattedMachineId``: ``ID [group]``."""
    return f"{machine['id']} [{group_of(machine)}]"


def sim(machine: dict[str, Any]) -> dict[str, Any]:
    """Simulator-only facts about a machine (never printed): ``health`` of the app it runs."""
    data: dict[str, Any] = machine.setdefault("_sim", {"health": "pass"})
    return data


def live_volumes(app: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in app["volumes"] if v["state"] not in DESTROYED_VOLUME_STATES]


def _size_gb(value: Any, default: int = 1) -> int:
    if isinstance(value, int):
        return value
    if value in (None, ""):
        return default
    match = re.fullmatch(r"\s*(\d+)\s*(gb|g)?\s*", str(value), re.IGNORECASE)
    return int(match.group(1)) if match else default


def new_volume(
    app: str,
    name: str,
    region: str,
    size: int,
    *,
    encrypted: bool = True,
    retention: int = 5,
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
        # fly-go volume_types.go HostStatus: the health of the volume's host. deploy and scale count reuse
        # only unattached volumes whose host is "ok" (deploy/machines.go setVolumes, scale
        # machine_defaults.go newDefaults).
        "host_status": "ok",
    }


class StatusLogger:
    """``internal/statuslogger/noninteractive.go``: one line per status change on stdout, ``GLYPH [i/N] text``
    (the index only when the logger has more than one line; glyphs ``>`` running, ``✔`` success, ``✖``
    failure; ``shared.go`` ``formatIndex`` pads the index to the width of N)."""

    GLYPHS: ClassVar[dict[str, str]] = {"none": " ", "running": ">", "success": "✔", "failure": "✖"}

    def __init__(self, out: Emit, total: int) -> None:
        self.out = out
        self.total = total
        self.status = ["none"] * max(total, 1)

    def log(self, line: int, text: str, status: str | None = None) -> None:
        if status is not None:
            self.status[line] = status
        prefix = self.GLYPHS[self.status[line]] + " "
        if self.total > 1:
            prefix += f"[{line + 1:0{len(str(self.total))}d}/{self.total}] "
        self.out(prefix + text)


# --- health ------------------------------------------------------------------------------------------------


def health_timeout(mid: str) -> str:
    """``internal/machine/leasable_machine.go`` ``WaitForHealthchecksToPass`` at its deadline (the flaps
    ``Get`` error it wraps is shortened to ``failed to get VM ID: context deadline exceeded``)."""
    return (
        f"timeout reached waiting for health checks to pass for machine {mid}: failed to get VM {mid}: "
        "context deadline exceeded"
    )


def smoke_failure(mid: str) -> str:
    """``deploy/machines_deploymachinesapp.go`` ``smokeChecksError`` around ``leasable_machine.go``
    ``WaitForSmokeChecksToPass`` seeing an exit event with restarts (``isConstantlyRestarting``)."""
    return f"smoke checks for {mid} failed: the app appears to be crashing"


STATE_TIMEOUT = (
    "timeout reached waiting for machine's state to change"  # internal/machine/wait.go WaitTimeoutErr
)
STATE_TIMEOUT_DESCRIPTION = (
    "Your machine was created, but never started or exited immediately. This could mean that your app is "
    "taking a long time to start,\nbut it could be indicative of a region issue.\n\nAlternatively, your app "
    "may have exited immediately due to a startup failure. Check your Dockerfile\nto ensure it specifies a "
    "valid start command (e.g., check that your 'CMD' or 'ENTRYPOINT' is correct).\nYou can also try "
    "running 'fly logs' to see what happened when the machine tried to start."
)
STATE_TIMEOUT_SUGGESTION = (
    "You can try deploying to a different region,\nor you can try increasing the timeout with the "
    "--wait-timeout flag"
)  # deploy/machines_deploymachinesapp.go suggestChangeWaitTimeout, desired state "started"


def plan_verdict(state: State, app: str, image_ref: str, *, consume_plan: bool) -> str:
    """One health-plan entry per ``fly deploy`` (an empty plan passes); an unhealthy image pattern fails.
    Returns ``pass``, ``fail``, ``crash`` or ``failed``."""
    verdict = "pass"
    plan = state.get("health_plans", {}).get(app) or []
    if consume_plan and plan:
        verdict = normalise_verdict(plan.pop(0))
    if verdict == "pass" and any(
        fnmatch.fnmatchcase(image_ref, pattern) for pattern in state.get("unhealthy_images", [])
    ):
        verdict = "fail"
    return verdict


def normalise_verdict(entry: Any) -> str:
    text = str(entry).lower()
    if text in HEALTHY:
        return "pass"
    if text in UNHEALTHY:
        return "fail"
    if text in CRASHED:
        return "crash"
    if text in FAILED_STATE:
        return "failed"
    raise ValueError(f"unknown health plan entry {entry!r}")


def check_states(checks: dict[str, dict[str, Any]], passing: bool, now: str) -> list[dict[str, Any]]:
    """Machine check statuses (fly-go ``MachineCheckStatus``: name, status, output, updated_at)."""
    out = []
    for name, check in checks.items():
        port = check.get("port", 8080)
        if passing:
            output = (
                f"GET {check.get('path', '/')} on port {port}: 200 OK"
                if check.get("type") == "http"
                else "Success"
            )
        else:
            output = f"dial tcp [::1]:{port}: connect: connection refused"
        out.append(
            {
                "name": name,
                "status": "passing" if passing else "critical",
                "output": output,
                "updated_at": now,
            }
        )
    return out


def status_checks(machine: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The checks a machine reports, by name, from its config: service checks, then ``config.checks``."""
    config = machine["config"]
    out: dict[str, dict[str, Any]] = {}
    index = 0
    for svc in config.get("services") or []:
        for check in svc.get("checks") or []:
            out[f"servicecheck-{index:02d}-{check.get('type', 'tcp')}-{check.get('port', 8080)}"] = check
            index += 1
    out.update(config.get("checks") or {})
    return out


def run_machine(machine: dict[str, Any], verdict: str, now: str) -> None:
    """flyd starts the machine with its current config; the app then behaves as ``verdict`` says."""
    sim(machine)["health"] = verdict
    checks = status_checks(machine)
    events = [{"type": "start", "status": "started", "source": "user", "timestamp": now}]
    if verdict == "failed":
        machine["state"] = "failed"
        machine["checks"] = []
        events = [{"type": "start", "status": "failed", "source": "flyd", "timestamp": now}]
    elif verdict == "crash":
        machine["state"] = "stopped"
        machine["checks"] = check_states(checks, False, now)
        events.append(
            {
                "type": "exit",
                "status": "stopped",
                "source": "flyd",
                "timestamp": now,
                "request": {
                    "exit_event": {"exit_code": 1, "restarting": False, "requested_stop": False},
                    "restart_count": 10,
                },
            }
        )
    else:
        machine["state"] = "started"
        machine["checks"] = check_states(checks, verdict == "pass", now)
    machine["events"] = [*events, *machine.get("events", [])][:10]
    machine["updated_at"] = now


def stop_machine(machine: dict[str, Any], how: str, now: str) -> None:
    """The machine stops (or suspends); its checks are left as they were last reported (stale)."""
    machine["state"] = "suspended" if how == "suspend" else "stopped"
    machine["updated_at"] = now
    event = {"type": "suspend" if how == "suspend" else "exit", "status": machine["state"], "source": "flyd"}
    machine["events"] = [{**event, "timestamp": now}, *machine.get("events", [])][:10]


# --- machine configs ---------------------------------------------------------------------------------------


def machine_config(
    cfg: appconfig.Config, group: str, image_ref: str, release: dict[str, Any], primary_region: str
) -> dict[str, Any]:
    """``internal/appconfig/machines.go`` ``ToMachineConfig`` + ``deploy/machines_launchinput.go``
    ``setMachineReleaseData``: env (with FLY_PROCESS_GROUP, PRIMARY_REGION), services, checks, release
    metadata. Mounts are filled in by the caller."""
    processes = cfg.get("processes") if isinstance(cfg.get("processes"), dict) else {}
    command = processes.get(group) if processes else None
    env = {**appconfig.env(cfg), "FLY_PROCESS_GROUP": group}
    if primary_region:
        env["PRIMARY_REGION"] = primary_region
    return {
        "env": env,
        "init": {"cmd": shlex.split(command) if isinstance(command, str) else command or None},
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
        "metadata": release_metadata(group, release),
        "services": appconfig.machine_services(cfg, group),
        "checks": appconfig.top_checks(cfg, group),
        "image": image_ref,
        "restart": {"policy": "on-failure", "max_retries": 10},
        "mounts": [],
    }


def release_metadata(group: str, release: dict[str, Any]) -> dict[str, str]:
    return {
        "fly_platform_version": "v2",
        "fly_process_group": group,
        "fly_release_id": release["id"],
        "fly_release_version": str(release["version"]),
        "fly_flyctl_version": FLYCTL_VERSION_META,
    }


def mount_entry(volume: dict[str, Any], path: str) -> dict[str, Any]:
    """fly-go ``MachineMount``."""
    return {
        "encrypted": bool(volume.get("encrypted", True)),
        "path": path,
        "size_gb": volume["size_gb"],
        "volume": volume["id"],
        "name": volume["name"],
    }


def attach(volume: dict[str, Any], mid: str) -> None:
    volume["attached_machine_id"] = mid
    volume["attached_alloc_id"] = None


def detach_volumes(app: dict[str, Any], mid: str) -> None:
    for volume in app["volumes"]:
        if volume["attached_machine_id"] == mid:
            volume["attached_machine_id"] = None


def tick_unbind(app: dict[str, Any]) -> None:
    """One volume API call passes (``volumes list``/``destroy``): a destroyed machine's volume that was
    still bound for this many calls counts one down, and is unbound once none are left."""
    for volume in app["volumes"]:
        if "_sim_bound_for" not in volume:
            continue
        if volume["_sim_bound_for"] <= 0:
            del volume["_sim_bound_for"]
            volume["attached_machine_id"] = None
        else:
            volume["_sim_bound_for"] -= 1


def set_image(machine: dict[str, Any], image_ref: str, digest: str) -> None:
    image = shapes.parse_image_ref(image_ref)
    # A ref that names its digest (``repo@sha256:…``) is pulled by it: the machine runs that digest.
    image["digest"] = digest or image["digest"] or ids.image_digest(image_ref)
    machine["image_ref"] = image
    machine["config"]["image"] = image_ref


def new_machine(region: str, config: dict[str, Any], now: str) -> dict[str, Any]:
    mid = ids.machine_id()
    return {
        "id": mid,
        "name": ids.friendly_name(),
        "state": "created",
        "region": region,
        "instance_id": ids.ulid(),
        "private_ip": ids.private_ip(mid),
        "created_at": now,
        "updated_at": now,
        "config": config,
        "image_ref": {},
        "host_status": "ok",
        "checks": [],
        "events": [{"type": "launch", "status": "created", "source": "user", "timestamp": now}],
        "_sim": {"health": "pass"},
    }


def destroy_machine(state: State, app: dict[str, Any], machine: dict[str, Any]) -> None:
    """The Machines API destroys it (``Destroy`` with kill); its volume is detached and KEPT (unattached).

    Fly unbinds the volume some time after the machine is gone ("a delay of up to a minute after a machine
    has been destroyed before the volume is no longer registered as attached": fly-apps/
    terraform-provider-fly#154; #218 "Destroying volume fails saying it's still attached to the machine"),
    and until then ``volumes destroy`` fails with "currently bound to machine". The simulator counts that
    delay in volume API calls (``control.set_unbind_delay``), not seconds, so tests stay deterministic."""
    delay = int(app.get("_sim_unbind_delay", 0))
    if delay:
        for volume in app["volumes"]:
            if volume["attached_machine_id"] == machine["id"]:
                volume["_sim_bound_for"] = delay
    else:
        detach_volumes(app, machine["id"])
    app["machines"] = [m for m in app["machines"] if m["id"] != machine["id"]]
    logstore.append(state, app["name"], "Machine destroyed", instance=machine["id"], region=machine["region"])


# --- the proxy: autostop, autostart, routing ----------------------------------------------------------------


def _service_autostop(config: dict[str, Any]) -> str:
    """The proxy's setting for a machine: the least autostop across its services (off < stop < suspend),
    as flyctl reasons in ``deployCreateMachinesForGroups``; a service without autostop counts as off."""
    modes = []
    for svc in config.get("services") or []:
        raw = svc.get("autostop")
        modes.append(appconfig.autostop_mode(raw) or "off")
    return min(modes, key=appconfig.AUTOSTOP_MODES.index) if modes else "off"


def _min_running(config: dict[str, Any]) -> int:
    return max((int(s.get("min_machines_running") or 0) for s in config.get("services") or []), default=0)


def proxy_idle(state: State, app: dict[str, Any]) -> list[str]:
    """Fly Proxy with no traffic (fly docs reference/fly-proxy-autostop-autostart): for machines whose
    services set ``auto_stop_machines`` to stop/suspend, every started machine above
    ``min_machines_running`` is stopped (suspended); min_machines_running counts in the PRIMARY region
    only, so other regions go to zero. Fly Proxy is not open source and flyctl has no part in this: which
    machines it keeps is not documented (the simulator keeps the oldest), and the real proxy stops one
    machine per region every few minutes (the same docs page) where the simulator settles at once.
    Returns the ids it stopped."""
    now = clock.rfc3339()
    stopped: list[str] = []
    kept: dict[tuple[str, str], int] = {}
    for machine in sorted(active(app), key=lambda m: m["created_at"]):
        if machine["state"] != "started":
            continue
        mode = _service_autostop(machine["config"])
        if mode == "off":
            continue
        primary = machine["config"].get("env", {}).get("PRIMARY_REGION", machine["region"])
        keep = _min_running(machine["config"]) if machine["region"] == primary else 0
        key = (group_of(machine), machine["region"])
        if kept.get(key, 0) < keep:
            kept[key] = kept.get(key, 0) + 1
            continue
        stop_machine(machine, mode, now)
        running = sum(1 for m in active(app) if m["state"] == "started" and (group_of(m), m["region"]) == key)
        total = sum(1 for m in active(app) if (group_of(m), m["region"]) == key)
        logstore.append(  # fly-proxy's log line: its wording is the simulator's, no public source quotes it
            state,
            app["name"],
            f"App {app['name']} has excess capacity, autostopping machine {machine['id']}. {running} out of "
            f"{total} machines left running (region={machine['region']}, process group={key[0]})",
            instance="",
            region=machine["region"],
            level="info",
        )
        stopped.append(machine["id"])
    return stopped


def autostop_enabled(state: State, app: str) -> bool:
    return bool(state.get("autostop", {}).get(app))


def route(state: State, app_name: str, *, start: bool) -> tuple[int, dict[str, str]]:
    """What ``GET https://APP.fly.dev/health`` answers through Fly Proxy: from a STARTED machine serving the
    app's services (one passing its checks when there is one; the proxy's tie-break is not documented, the
    simulator takes the oldest); with none
    started and ``auto_start_machines``, the proxy starts a stopped/suspended one first (``start=True``
    changes state; ``False`` only predicts). The app's answer: 200 ``{"status":"ok","release":REF}`` when its
    health passes, else 503 ``{"status":"unhealthy","release":REF}``; REF is the machine's FLY_IMAGE_REF
    (fly docs runtime-environment: the image the machine runs). No machine to route to: 503 without
    ``release``. Unknown app: 404. ``control.serve_stale`` overrides the machine's answer."""
    app = state["apps"].get(app_name)
    if app is None:
        return 404, {"status": "unknown app"}
    serving = [m for m in active(app) if m["config"].get("services")]
    serving.sort(key=lambda m: m["created_at"])
    started = [m for m in serving if m["state"] == "started"]
    if not started:
        startable = [
            m
            for m in serving
            if m["state"] in ("stopped", "suspended", "created")
            and any(s.get("autostart", True) is not False for s in m["config"].get("services") or [])
        ]
        primary = [m for m in startable if m["region"] == m["config"].get("env", {}).get("PRIMARY_REGION")]
        pick = (primary or startable)[:1]
        for machine in pick:
            verdict = sim(machine)["health"]
            if start:
                run_machine(machine, verdict, clock.rfc3339())
                logstore.append(
                    state,
                    app_name,
                    f"Starting machine {machine['id']} (autostart)",
                    instance=machine["id"],
                    region=machine["region"],
                )
                if machine["state"] == "started":
                    started = [machine]
            elif verdict in ("pass", "fail"):
                started = [machine]
    if not started:
        return 503, {"status": "unavailable", "error": "no started machine can serve the request"}
    machine = next((m for m in started if sim(m)["health"] == "pass"), started[0])
    stale = state.get("proxy_stale", {}).get(app_name)
    if stale:
        return 200, {"status": "ok", "release": stale}
    release = str(machine["config"].get("image", ""))
    if sim(machine)["health"] == "pass":
        return 200, {"status": "ok", "release": release}
    return 503, {"status": "unhealthy", "release": release}


# --- the deployment -----------------------------------------------------------------------------------------


@dataclass
class _Entry:
    machine: dict[str, Any]
    config: dict[str, Any]
    skip_launch: bool
    replace: bool = False
    new_volume: dict[str, Any] | None = None
    index: int = 0


@dataclass
class Deployment:
    state: State
    app: dict[str, Any]
    cfg: appconfig.Config
    args: DeployArgs
    io: Output
    primary_region: str
    now: str = field(default_factory=clock.rfc3339)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    touched: bool = False

    def place_image(self, machine: dict[str, Any], image_ref: str, digest: str) -> None:
        """``set_image``, except that the machine ``control.drift_digest`` chose comes up on its digest:
        what a moved tag or a registry serving other bytes looks like from ``machines list --json``."""
        drift = self.state.get("digest_drift", {})
        wrong = drift.get(self.app["name"])
        if wrong and image_ref == self.args.image_ref:
            del drift[self.app["name"]]  # one machine, one deploy
            digest = wrong
        set_image(machine, image_ref, digest)

    # deploy/machines.go setMachinesForDeployment + machineFilteredFromDeploymentByProcessGroup
    def select_machines(self) -> list[dict[str, Any]]:
        machines = active(self.app)
        a = self.args
        applied: list[str] = []
        selected = []
        for m in machines:
            out = False
            if a.only_regions:
                applied.append("--regions")
                out = out or m["region"] not in a.only_regions
            if a.exclude_regions:
                applied.append("--exclude-regions")
                out = out or m["region"] in a.exclude_regions
            if a.only_machines:
                applied.append("--only-machines")
                out = out or m["id"] not in a.only_machines
            if a.exclude_machines:
                applied.append("--exclude-machines")
                out = out or m["id"] in a.exclude_machines
            if a.process_groups:
                applied.append("--process-groups")
                out = out or group_of(m) not in a.process_groups
            if not out:
                selected.append(m)
        names = list(dict.fromkeys(applied))
        if names:
            # Go iterates the filter map in random order; the simulator keeps flag order.
            plural = "s" if len(names) > 1 else ""
            self.io.err(
                f"{'/'.join(names)} filter{plural} applied, deploying to {len(selected)}/{len(machines)} "
                "machines"
            )
        return selected

    # deploy/machines.go ProcessNames: the config's groups, narrowed by --process-groups
    def process_names(self) -> list[str]:
        names = appconfig.process_groups(self.cfg)
        if self.args.process_groups:
            names = [n for n in names if n in self.args.process_groups]
        return names

    # deploy/machines.go setVolumes: unattached volumes (host ok, not being destroyed) by name
    def volume_pool(self) -> dict[str, list[dict[str, Any]]]:
        pool: dict[str, list[dict[str, Any]]] = {}
        for volume in live_volumes(self.app):
            if not volume["attached_machine_id"] and volume.get("host_status") == "ok":
                pool.setdefault(volume["name"], []).append(volume)
        return pool

    # deploy/machines.go popVolumeFor
    def pop_volume(
        self, pool: dict[str, list[dict[str, Any]]], name: str, region: str
    ) -> dict[str, Any] | None:
        for idx, volume in enumerate(pool.get(name, [])):
            if not region or volume["region"] == region:
                return pool[name].pop(idx)
        return None

    # deploy/deploy_first.go provisionIpsOnFirstDeploy (shared v4 + dedicated v6, the non-interactive choice)
    def provision_ips(self) -> None:
        if not appconfig.services(self.cfg) or self.app.get("ips"):
            return
        v6 = f"2a09:8280:1::{ids.machine_id()[:4]}:{ids.machine_id()[:4]}:0"
        self.app["ips"] = [{"type": "v6", "address": v6}, {"type": "shared_v4", "address": "66.241.125.17"}]
        self.io.out(f"Provisioning ips for {self.app['name']}")
        self.io.out(f"  Dedicated ipv6: {v6}")
        self.io.out("  Shared ipv4: 66.241.125.17")
        self.io.out("  Add a dedicated ipv4 with: fly ips allocate-v4")
        self.io.out("")

    # deploy/deploy_first.go provisionVolumesOnFirstDeploy: one per group and mount, in the primary region,
    # unless an unattached volume of that name (in ANY region) is already there
    def provision_volumes(self, pool: dict[str, list[dict[str, Any]]]) -> None:
        existing = {name: len(vs) for name, vs in pool.items()}
        for group in appconfig.process_groups(self.cfg):
            for mount in appconfig.mounts_for(self.cfg, group):
                source = mount["source"]
                if existing.get(source, 0) > 0:
                    existing[source] -= 1
                    continue
                size = _size_gb(mount.get("initial_size"), self.args.volume_initial_size or 1)
                self.io.out(
                    f"Creating a {size} GB volume named '{source}' for process group '{group}'. "
                    "Use 'fly vol extend' to increase its size"
                )
                volume = new_volume(
                    self.app["name"],
                    source,
                    self.primary_region,
                    size,
                    retention=int(mount.get("snapshot_retention") or 5),
                )
                self.app["volumes"].append(volume)
                pool.setdefault(source, []).append(volume)

    # deploy/machines.go validateVolumeConfig
    def validate_volumes(self, selected: list[dict[str, Any]], pool: dict[str, list[dict[str, Any]]]) -> None:
        for group in self.process_names():
            machines = [m for m in selected if group_of(m) == group]
            mounts = appconfig.mounts_for(self.cfg, group)
            if machines:
                src, dst = (mounts[0]["source"], mounts[0]["destination"]) if mounts else ("", "")
                needs: dict[str, list[str]] = {}
                for m in machines:
                    mms = m["config"].get("mounts") or []
                    if not dst and mms:
                        self.io.err(
                            f"Warning! machine {m['id']} [{group}] has a volume mounted but app config does "
                            "not "
                            "specify a volume.\nThis usually indicates a misconfiguration."
                        )
                        # prompt.Confirm without a terminal (deploy's --yes is not consulted here)
                        raise FlyError("yes flag must be specified when not running interactively")
                    if dst and not mms:
                        needs.setdefault(src, []).append(m["region"])
                    if mms and src and mms[0].get("name") and src != mms[0]["name"]:
                        raise FlyError(
                            f"machine {m['id']} [{group}] can't update the attached volume {src} with name "
                            f"'{mms[0].get('volume')}' by '{mms[0]['name']}'"
                        )
                for source, regions in needs.items():
                    have: dict[str, int] = {}
                    for v in pool.get(source, []):
                        have[v["region"]] = have.get(v["region"], 0) + 1
                    missing = [
                        f"{r}={regions.count(r) - have.get(r, 0)}"
                        for r in sorted(set(regions))
                        if regions.count(r) - have.get(r, 0) > 0
                    ]
                    if missing:
                        raise FlyError(
                            f"Process group '{group}' needs volumes with name '{source}' to fulfill mounts "
                            "defined "
                            f"in fly.toml; Run `fly volume create {source} -r REGION -n COUNT` for the "
                            "following "
                            f"regions and counts: {' '.join(missing)}"
                        )
            else:
                for mount in mounts:
                    if not pool.get(mount["source"]):
                        raise FlyError(
                            f"creating a new machine in group '{group}' requires an unattached "
                            f"'{mount['source']}' "
                            f"volume. Create it with `fly volume create {mount['source']}`"
                        )

    # deploy/machines.go createReleaseInBackend (+ updateReleaseInBackend "running")
    def create_release(self) -> dict[str, Any]:
        version = max((r["version"] for r in self.app["releases"]), default=0) + 1
        release = {
            "id": ids.node_id(),
            "version": version,
            "status": "running",
            "reason": self.args.reason,
            "description": self.args.description,
            "strategy": self.args.strategy,
            "image_ref": self.args.image_ref,
            "user_email": self.args.user_email,
            "created_at": self.now,
            "healthy": False,
        }
        self.app["releases"].append(release)
        self.app["config"] = self.cfg  # the release carries the config definition (FromRemoteApp reads it)
        self.app["image"] = self.args.image_ref
        return release

    # deploy/machines_releasecommand.go runReleaseCommands
    def release_command(self) -> None:
        deploy_section = self.cfg.get("deploy") if isinstance(self.cfg.get("deploy"), dict) else {}
        command = (deploy_section or {}).get("release_command")
        if not command or self.args.skip_release_command or self.args.restart_only:
            return
        self.io.err(f"Running {self.app['name']} release_command: {command}")
        mid = ids.machine_id()
        line = StatusLogger(self.io.out, 1)
        line.log(0, f"Created release_command machine {mid}", "running")
        line.log(0, f"release_command {mid} completed successfully", "success")

    def spawn(
        self,
        logger: StatusLogger,
        line: int,
        group: str,
        release: dict[str, Any],
        verdict: str,
        pool: dict[str, list[dict[str, Any]]],
        standby_for: list[str] | None = None,
    ) -> dict[str, Any]:
        """``machines_deploymachinesapp.go`` ``spawnMachineInGroup`` (+ ``machines_launchinput.go``
        ``launchInputForLaunch``): a new machine of ``group`` in the primary region; a mount takes an
        unattached volume there; a standby is created but not started (``shouldSkipLaunch``)."""
        config = machine_config(self.cfg, group, self.args.image_ref, release, self.primary_region)
        mounts = appconfig.mounts_for(self.cfg, group)
        volume = None
        if mounts:
            volume = self.pop_volume(pool, mounts[0]["source"], self.primary_region)
            if volume is None:
                raise FlyError(
                    f"error creating machine configuration: New machine in group '{group}' needs an "
                    "unattached "
                    f"volume named '{mounts[0]['source']}' in region '{self.primary_region}'"
                )
            config["mounts"] = [mount_entry(volume, mounts[0]["destination"])]
        if standby_for:
            config["standbys"] = list(standby_for)
            config["env"]["FLY_STANDBY_FOR"] = ",".join(standby_for)
        machine = new_machine(self.primary_region, config, self.now)
        self.place_image(machine, self.args.image_ref, self.args.digest)
        if volume is not None:
            attach(volume, machine["id"])
        self.app["machines"].append(machine)
        self.created.append(machine["id"])
        self.touched = True
        logger.log(line, f"Machine {formatted_id(machine)} was created")
        if standby_for:  # shouldSkipLaunch: standbys are created, not started
            sim(machine)["health"] = verdict
            return machine
        run_machine(machine, verdict, self.now)
        _log_boot(self.state, self.app["name"], machine, self.args.image_ref)
        if self.args.strategy == "immediate":
            return machine  # "Roll up as fast as possible when using immediate strategy"
        if not self.args.skip_smoke and verdict == "crash":
            raise FlyError(
                smoke_failure(machine["id"]),
                suggestion=(
                    f"Smoke checks for {machine['id']} failed: the app appears to be crashing\n"
                    f"Check its logs: here's the last lines below, or run 'fly logs -i {machine['id']}':\n"
                    + _crash_log()
                ),
            )
        if not self.args.skip_health:
            if machine["state"] != "started":
                raise FlyError(
                    STATE_TIMEOUT, description=STATE_TIMEOUT_DESCRIPTION, suggestion=STATE_TIMEOUT_SUGGESTION
                )
            if verdict != "pass" and status_checks(machine):
                raise FlyError(health_timeout(machine["id"]))
            logger.log(line, f"Machine {formatted_id(machine)} update finished: success", "success")
        return machine

    # machines_deploymachinesapp.go deployCreateMachinesForGroups
    def create_for_groups(
        self, groups: list[str], release: dict[str, Any], verdict: str, pool: dict[str, list[dict[str, Any]]]
    ) -> None:
        groups = sorted(groups)
        logger = StatusLogger(self.io.out, len(groups))
        autostop: dict[str, list[str]] = {"stop": [], "suspend": []}
        for line, name in enumerate(groups):
            logger.log(line, "Launching new machine", "running")
            self.io.out(f"No machines in group {name}, launching a new machine")
            try:
                first = self.spawn(logger, line, name, release, verdict, pool)
                services = appconfig.services_for(self.cfg, name)
                if services:
                    mode = appconfig.group_autostop(self.cfg, name)
                    if mode in autostop:
                        autostop[mode].append(name)
                if not self.args.ha:
                    continue
                # "Create only 1 machine if the group has mounts; 2 machines for groups with services;
                # 1 always-on and 1 standby machine for groups without services"
                if appconfig.mounts_for(self.cfg, name):
                    continue
                if services:
                    self.io.out(
                        "Creating a second machine for high availability and zero downtime deployments."
                    )
                    self.io.out('To disable this, set "min_machines_running = 0" in your fly.toml.')
                    self.spawn(logger, line, name, release, verdict, pool)
                else:
                    self.io.out(f"Creating a standby machine for {first['id']}")
                    self.spawn(logger, line, name, release, verdict, pool, standby_for=[first["id"]])
            except FlyError as exc:
                logger.log(line, f"Failed: {exc.message.splitlines()[0]}", "failure")  # statuslogger.Failed
                raise
        if groups:
            self.io.err("Finished launching new machines")
        for mode, names in autostop.items():
            if names:
                verb = "stopped" if mode == "stop" else "suspended"
                self.io.out(
                    f"\n\nNOTE: The machines for [{','.join(sorted(names))}] have services with "
                    f"'auto_stop_machines = \"{mode}\"' that will be {verb} when idling\n"
                )

    # machines_launchinput.go launchInputForUpdate / launchInputForRestart, shouldSkipLaunch
    def plan_update(
        self, machine: dict[str, Any], release: dict[str, Any], pool: dict[str, list[dict[str, Any]]]
    ) -> _Entry:
        # shouldSkipLaunch(origMachineRaw, mConfig): a started, starting or failed machine is launched
        # whatever its config (standbys included: that case comes first in the switch); any other existing
        # machine is updated without a launch. Standbys decide only for a machine that does not exist yet
        # (``spawn``).
        skip = machine["state"] not in ("started", "starting", "failed")
        if self.args.restart_only:
            config = copy.deepcopy(machine["config"])
            config["metadata"] = {
                **config.get("metadata", {}),
                **release_metadata(group_of(machine), release),
            }
            return _Entry(machine, config, skip)
        group = group_of(machine)
        config = machine_config(self.cfg, group, self.args.image_ref, release, self.primary_region)
        if machine["config"].get("standbys") and not config["services"]:
            config["standbys"] = machine["config"]["standbys"]
            config["env"]["FLY_STANDBY_FOR"] = ",".join(machine["config"]["standbys"])
        old = machine["config"].get("mounts") or []
        wanted = appconfig.mounts_for(self.cfg, group)
        entry = _Entry(machine, config, skip)
        where = f"failed to update machine configuration for {formatted_id(machine)}: "
        if old:
            if not wanted:
                entry.replace = True  # the [mounts] section was removed
            elif old[0].get("name") and old[0]["name"] != wanted[0]["source"]:
                self.io.err(
                    f"WARN Machine {machine['id']} has volume '{old[0]['name']}' attached but fly.toml have "
                    "a "
                    f"different name: '{wanted[0]['source']}'"
                )
                volume = self.pop_volume(pool, wanted[0]["source"], machine["region"])
                if volume is None:
                    raise FlyError(
                        where + f"machine in group '{group}' needs an unattached volume named "
                        f"'{wanted[0]['source']}' in region '{machine['region']}'"
                    )
                config["mounts"] = [mount_entry(volume, wanted[0]["destination"])]
                entry.replace, entry.new_volume = True, volume
            else:
                config["mounts"] = [{**old[0], "path": wanted[0]["destination"]}]
                if old[0].get("path") != wanted[0]["destination"]:
                    self.io.err(
                        f"WARN Updating the mount path for volume {old[0].get('volume')} on machine "
                        f"{machine['id']} from {old[0].get('path')} to {wanted[0]['destination']} due to "
                        "fly.toml [mounts] destination value"
                    )
        elif wanted:
            # "[mounts] section was added to fly.toml": a machine cannot gain a volume, it is replaced
            volume = self.pop_volume(pool, wanted[0]["source"], machine["region"])
            if volume is None:
                raise FlyError(
                    where + f"machine in group '{group}' needs an unattached volume named "
                    f"'{wanted[0]['source']}' in region '{machine['region']}'"
                )
            config["mounts"] = [mount_entry(volume, wanted[0]["destination"])]
            entry.replace, entry.new_volume = True, volume
        return entry

    def apply_update(self, entry: _Entry, verdict: str) -> dict[str, Any]:
        """Update the machine in place (``updateMachineInPlace``) or destroy and relaunch it
        (``updateMachineByReplace``, when its volume changes). Skipped launches keep their state and stale
        checks."""
        machine = entry.machine
        if entry.replace:
            region = machine["region"]
            destroy_machine(self.state, self.app, machine)
            machine = new_machine(region, entry.config, self.now)
            self.app["machines"].append(machine)
            self.created.append(machine["id"])
            if entry.new_volume is not None:
                attach(entry.new_volume, machine["id"])
            entry.skip_launch = False
        else:
            machine["config"] = entry.config
            self.updated.append(machine["id"])
        machine["instance_id"] = ids.ulid()
        image = entry.config.get("image") or self.args.image_ref
        self.place_image(
            machine,
            image,
            self.args.digest if image == self.args.image_ref else machine["image_ref"].get("digest", ""),
        )
        self.touched = True
        if entry.skip_launch:
            sim(machine)["health"] = verdict  # what the app will do once something starts it
            machine["updated_at"] = self.now
            machine["events"] = [
                {"type": "update", "status": machine["state"], "source": "user", "timestamp": self.now},
                *machine.get("events", []),
            ][:10]
        else:
            run_machine(machine, verdict, self.now)
            _log_boot(self.state, self.app["name"], machine, image)
        entry.machine = machine
        return machine

    # plan.go updateMachinesWRecovery / updateProcessGroup / updateMachineWChecks
    def update_existing(self, entries: list[_Entry], verdict_of: Callable[[dict[str, Any]], str]) -> None:
        if not entries:
            return
        self.io.out(f"Updating existing machines in '{self.app['name']}' with {self.args.strategy} strategy")
        immediate = self.args.strategy == "immediate"
        skip_health = self.args.skip_health or immediate
        skip_smoke = self.args.skip_smoke or immediate
        entries.sort(key=lambda e: e.machine["id"])  # Go builds the tuples from a map; retries sort by id
        logger = StatusLogger(self.io.out, len(entries))
        for idx, entry in enumerate(entries):
            entry.index = idx
        for entry in entries:
            logger.log(entry.index, f"Acquiring lease for {entry.machine['id']}", "running")
            logger.log(entry.index, f"Acquired lease for {entry.machine['id']}")
        failure: FlyError | None = None
        try:
            by_group: dict[str, list[_Entry]] = {}
            for entry in entries:
                by_group.setdefault(group_of(entry.machine), []).append(entry)
            for group_entries in by_group.values():
                warm = [e for e in group_entries if e.machine["state"] in ("started", "replacing")]
                cold = [e for e in group_entries if e not in warm]
                for entry in cold:  # "for cold machines, we can update all of them at once"
                    self._update_one(logger, entry, verdict_of(entry.machine), skip_health, skip_smoke)
                pool = self.pool_size(len(warm))
                for start in range(0, len(warm), pool):
                    batch = warm[start : start + pool]
                    errors = []
                    for entry in batch:
                        try:
                            self._update_one(
                                logger, entry, verdict_of(entry.machine), skip_health, skip_smoke
                            )
                        except FlyError as exc:
                            errors.append(exc)
                    if errors:
                        for entry in warm[start + pool :]:
                            logger.log(
                                entry.index, "skipping machine update due to earlier failure", "failure"
                            )
                        raise errors[0]
        except FlyError as exc:
            failure = exc
        for entry in entries:
            logger.log(entry.index, f"Clearing lease for {entry.machine['id']}", "running")
            logger.log(entry.index, f"Cleared lease for {entry.machine['id']}", "success")
        if failure is not None:
            raise failure

    # machines_deploymachinesapp.go getPoolSize
    def pool_size(self, total: int) -> int:
        mu = self.args.max_unavailable
        if mu is None:
            deploy_section = self.cfg.get("deploy") if isinstance(self.cfg.get("deploy"), dict) else {}
            mu = float((deploy_section or {}).get("max_unavailable") or DEFAULT_MAX_UNAVAILABLE)
        size = int(mu) if mu >= 1 else math.ceil(total * mu)
        return max(size, 1)

    def _update_one(
        self, logger: StatusLogger, entry: _Entry, verdict: str, skip_health: bool, skip_smoke: bool
    ) -> None:
        mid = entry.machine["id"]
        line = entry.index
        logger.log(line, f"Updating machine config for {mid}", "running")
        machine = self.apply_update(entry, verdict)
        logger.log(line, f"Updated machine config for {mid}")
        if not skip_health or not skip_smoke:
            logger.log(line, f"Waiting for machine {mid} to reach a good state")
            # plan.go updateMachineWChecks waits for stopped, started or suspended (waitForMachineState).
            # Which state the Machines API reports for an updated, never-started standby ("created", fly docs
            # machine-states) is the API's, not in flyctl's source; the simulator accepts "created" because
            # flyctl deploys groups with standbys (machines_deploymachinesapp.go) without timing out.
            if machine["state"] not in ("stopped", "started", "suspended", "created"):
                error = f"failed to update machine {mid}: {STATE_TIMEOUT}"
                logger.log(line, STATE_TIMEOUT, "failure")
                raise FlyError(error)
            logger.log(line, f"Machine {mid} reached {machine['state']} state")
        if entry.skip_launch:
            logger.log(line, f"Machine {mid} is now in a good state", "success")
            return
        problem = ""
        if not skip_smoke:
            logger.log(line, f"Running smoke checks on machine {machine['id']}")
            if verdict == "crash":
                problem = smoke_failure(machine["id"])
        if not problem and not skip_health:
            logger.log(line, f"Running machine checks on machine {machine['id']}")
            logger.log(line, f"Checking health of machine {machine['id']}")
            if verdict != "pass" and status_checks(machine):
                problem = health_timeout(machine["id"])
        if problem:
            logger.log(line, f"Unrecoverable error: {problem}", "failure")
            raise FlyError(f"failed to update machine {mid}: Unrecoverable error: {problem}")
        logger.log(line, f"Machine {machine['id']} is now in a good state", "success")

    def run(self) -> Outcome:
        args = self.args
        selected = self.select_machines()
        pool = self.volume_pool()
        first = not self.app["deployed"] and not selected  # deploy/machines.go setFirstDeploy
        if first and not args.restart_only:
            self.provision_ips()
            self.provision_volumes(pool)
        self.validate_volumes(selected, pool)
        release = self.create_release()
        error: FlyError | None = None
        try:
            if args.restart_only:
                entries = [self.plan_update(m, release, pool) for m in selected]
                self.update_existing(entries, lambda m: self._restart_verdict(m))
            else:
                verdict = plan_verdict(
                    self.state, self.app["name"], args.image_ref, consume_plan=args.consume_plan
                )
                self.release_command()
                names = self.process_names()
                remove = [m for m in selected if group_of(m) not in names]
                keep = [m for m in selected if group_of(m) in names]
                needing = [g for g in names if not any(group_of(m) == g for m in keep)]
                self.warn_group_changes(first, remove, needing)
                if args.strategy == "canary" and not first:
                    canary = StatusLogger(self.io.out, len(names))
                    for line, name in enumerate(names):
                        canary.log(line, f"Creating canary machine for group {name}", "running")
                for machine in remove:
                    self.io.out(
                        f"machine {machine['id']} was found and is currently in {machine['state']} state, "
                        "attempting to destroy..."
                    )  # internal/command/machine/destroy.go Destroy
                    destroy_machine(self.state, self.app, machine)
                    self.touched = True
                if not args.update_only:
                    self.create_for_groups(needing, release, verdict, pool)
                entries = []
                for m in keep:
                    entries.append(self.plan_update(m, release, pool))
                self.update_existing(entries, lambda m: verdict)
        except FlyError as exc:
            error = exc
        release["status"] = "failed" if error else "complete"
        release["healthy"] = error is None
        if self.touched:
            for secret in self.app["secrets"].values():
                secret["status"] = "Deployed"
        if self.app["machines"]:
            self.app["deployed"] = True
        if error is None and args.emit_release_json:
            # machines_deploymachinesapp.go DeployMachinesApp: json.Marshal of {id, version, image_ref},
            # Fprintf(md.io.Out, "%s\n") when FLY_EMIT_RELEASE_JSON is non-empty and the deploy succeeded
            self.io.out(
                render.go_json(
                    {"id": release["id"], "version": release["version"], "image_ref": release["image_ref"]}
                )
            )
        if autostop_enabled(self.state, self.app["name"]):
            proxy_idle(self.state, self.app)
        if error is not None:
            raise error
        return Outcome(release, self.created, self.updated)

    def _restart_verdict(self, machine: dict[str, Any]) -> str:
        """A restart runs the same image again: the app behaves as before, unless its image is marked
        unhealthy."""
        image = str(machine["config"].get("image", ""))
        if any(fnmatch.fnmatchcase(image, p) for p in self.state.get("unhealthy_images", [])):
            return "fail"
        return str(sim(machine).get("health", "pass"))

    # machines_deploymachinesapp.go warnAboutProcessGroupChanges
    def warn_group_changes(self, first: bool, remove: list[dict[str, Any]], needing: list[str]) -> None:
        if not remove and not needing:
            return
        self.io.out("This deployment will:" if first else "Process groups have changed. This will:")
        counts: dict[str, int] = {}
        for m in remove:
            counts[group_of(m)] = counts.get(group_of(m), 0) + 1
        for group, n in sorted(counts.items()):
            self.io.out(f' * destroy {n} "{group}" machine{"" if n == 1 else "s"}')
        for name in sorted(needing):
            if not self.args.ha or appconfig.mounts_for(self.cfg, name):
                description = f'1 "{name}" machine'
            elif appconfig.services_for(self.cfg, name):
                description = f'2 "{name}" machines'
            else:
                description = f'1 "{name}" machine and 1 standby machine for it'
            self.io.out(f" * create {description}")
        self.io.out("")


def deploy(
    state: State,
    app: dict[str, Any],
    *,
    cfg: appconfig.Config,
    args: DeployArgs,
    io: Output,
    primary_region: str,
) -> Outcome:
    """Run one deployment (see the module docstring); raises FlyError after recording a failed release."""
    return Deployment(state, app, cfg, args, io, primary_region).run()


def _crash_log() -> str:
    return "Error: the app exited with code 1\n"


def _log_boot(state: State, app: str, machine: dict[str, Any], image_ref: str) -> None:
    mid, region = machine["id"], machine["region"]
    for line in (
        f"Pulling container image {image_ref}",
        f"Successfully prepared image {image_ref}",
        "Configuring firecracker",
    ):
        logstore.append(state, app, line, instance=mid, region=region)
    verdict = sim(machine)["health"]
    if verdict == "failed":
        logstore.append(state, app, "machine failed to start", instance=mid, region=region, level="error")
        return
    logstore.append(state, app, "Machine started in 1.042s", instance=mid, region=region)
    if verdict == "pass":
        logstore.append(state, app, "Listening on 0.0.0.0:8080", instance=mid, region=region)
    elif verdict == "crash":
        logstore.append(
            state, app, "Main child exited normally with code: 1", instance=mid, region=region, level="error"
        )
    else:
        logstore.append(
            state,
            app,
            "Health check on port 8080 has failed. Your app is not responding properly.",
            instance=mid,
            region=region,
            level="error",
        )


def machines_in(app: dict[str, Any], ids_: Iterable[str]) -> list[dict[str, Any]]:
    wanted = set(ids_)
    return [m for m in active(app) if m["id"] in wanted]
