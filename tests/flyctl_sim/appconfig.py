"""fly.toml: finding it, loading it (tomllib) and the few semantics the simulator needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flyctl_sim.errors import FlyError

Config = dict[str, Any]

STRATEGIES = ("rolling", "canary", "bluegreen", "immediate")


def config_path(cwd: Path, flag_value: str, workdir: Path | None = None) -> Path:
    """``-c PATH`` (a file, or a directory holding fly.toml), else ``<workdir or cwd>/fly.toml``."""
    if flag_value:
        path = cwd / flag_value
        return path / "fly.toml" if path.is_dir() else path
    return (workdir or cwd) / "fly.toml"


def load(path: Path) -> Config:
    """Parse ``path``; a missing or malformed file fails like flyctl's config loader."""
    import tomllib  # imported on use: it compiles many regexes and most runs never read fly.toml

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise FlyError(
            f"failed loading app config from {path}: open {path}: no such file or directory"
        ) from None
    except IsADirectoryError:
        raise FlyError(f"failed loading app config from {path}: read {path}: is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise FlyError(f"failed loading app config from {path}: toml: {exc}") from None


def process_groups(cfg: Config) -> list[str]:
    """flyctl ``internal/appconfig/processgroups.go`` ``ProcessNames``: the ``[processes]`` keys SORTED
    (one key: as is), or the implicit ``app`` group."""
    processes = cfg.get("processes")
    return sorted(processes) if isinstance(processes, dict) and processes else ["app"]


def default_group(cfg: Config) -> str:
    """``processgroups.go`` ``DefaultProcessName``: ``app`` when it is a group, else the first sorted name."""
    groups = process_groups(cfg)
    return "app" if "app" in groups else groups[0]


def _as_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _applies(section: dict[str, Any], group: str, cfg: Config) -> bool:
    """``processgroups.go`` ``flattenGroupsMatch``: a section naming ``processes`` applies to those groups;
    one without ``processes`` applies to the DEFAULT group only (``DefaultProcessName``), not to every
    group."""
    wanted = section.get("processes")
    if not wanted:
        return group == default_group(cfg)
    return group in wanted


def mounts(cfg: Config) -> list[dict[str, Any]]:
    """``[[mounts]]`` (or a single ``[mounts]`` table)."""
    return _as_list(cfg.get("mounts"))


def mounts_for(cfg: Config, group: str) -> list[dict[str, Any]]:
    return [m for m in mounts(cfg) if _applies(m, group, cfg)]


# fly-go machine_types.go MachineAutostop: off < stop < suspend (iota order); flyctl compares with slices.Min.
AUTOSTOP_MODES = ("off", "stop", "suspend")


def autostop_mode(raw: Any) -> str | None:
    """fly-go ``MachineAutostop.UnmarshalText``: ``true``/``"stop"`` stop, ``false``/``"off"`` off,
    ``"suspend"``; None when unset."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return "stop" if raw else "off"
    text = str(raw)
    return {"true": "stop", "false": "off"}.get(text, text if text in AUTOSTOP_MODES else "off")


def services(cfg: Config) -> list[dict[str, Any]]:
    """``[http_service]`` first (as a service with ``http_checks``), then every ``[[services]]``
    (flyctl ``internal/appconfig/service.go``: both carry auto_stop/auto_start/min_machines_running)."""
    out: list[dict[str, Any]] = []
    http = cfg.get("http_service")
    if isinstance(http, dict):
        out.append(
            {
                "internal_port": http.get("internal_port", 8080),
                "protocol": "tcp",
                "processes": http.get("processes") or [],
                "http_checks": _as_list(http.get("checks")),
                "tcp_checks": [],
                "ports": [
                    {"port": 80, "handlers": ["http"], "force_https": bool(http.get("force_https", False))},
                    {"port": 443, "handlers": ["tls", "http"]},
                ],
                "autostop": autostop_mode(http.get("auto_stop_machines")),
                "autostart": http.get("auto_start_machines"),
                "min_machines_running": http.get("min_machines_running"),
                "_from": "http_service",
            }
        )
    for svc in _as_list(cfg.get("services")):
        out.append(
            {
                "internal_port": svc.get("internal_port", 8080),
                "protocol": svc.get("protocol", "tcp"),
                "processes": svc.get("processes") or [],
                "http_checks": _as_list(svc.get("http_checks")),
                "tcp_checks": _as_list(svc.get("tcp_checks")),
                "ports": _as_list(svc.get("ports")),
                "autostop": autostop_mode(svc.get("auto_stop_machines")),
                "autostart": svc.get("auto_start_machines"),
                "min_machines_running": svc.get("min_machines_running"),
                "_from": "services",
            }
        )
    return out


def services_for(cfg: Config, group: str) -> list[dict[str, Any]]:
    """The services a group's machines carry (``Flatten(group).AllServices()``)."""
    return [s for s in services(cfg) if _applies(s, group, cfg)]


def group_autostop(cfg: Config, group: str) -> str:
    """``machines_deploymachinesapp.go`` ``deployCreateMachinesForGroups``: "the proxy will use the most
    restrictive (the least) autostop setting across all of the group's services"; unset counts as off."""
    modes = [s["autostop"] or "off" for s in services_for(cfg, group)]
    return min(modes, key=AUTOSTOP_MODES.index) if modes else "off"


def group_min_running(cfg: Config, group: str) -> int:
    """min_machines_running of the group's services (the largest when several set it). Fly Proxy applies it,
    not flyctl (which only copies it into each service): fly docs reference/fly-proxy-autostop-autostart say
    it counts in the PRIMARY region only and do not say how several services combine; the largest keeps
    the most machines running."""
    values = [int(s["min_machines_running"] or 0) for s in services_for(cfg, group)]
    return max(values, default=0)


def group_autostart(cfg: Config, group: str) -> bool:
    """Whether the proxy starts a stopped machine of the group on a request. Unset ``auto_start_machines``
    is true: the proxy's default, not in flyctl's source; fly docs apps/autostart-stop "Default values":
    "auto_start_machines = true and auto_stop_machines = false"."""
    return any(s["autostart"] is not False for s in services_for(cfg, group))


def _check_spec(kind: str, port: int, check: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": kind,
        "port": port,
        "interval": check.get("interval", "15s"),
        "timeout": check.get("timeout", "10s"),
        "grace_period": check.get("grace_period", "1s"),
    }
    if kind == "http":
        entry["method"] = check.get("method", "GET")
        entry["path"] = check.get("path", "/")
    return entry


def machine_checks(cfg: Config, group: str) -> dict[str, dict[str, Any]]:
    """Every check a group's machine reports, by the name ``checks list`` shows: service checks named
    ``servicecheck-NN-<type>-<port>``, then top-level ``[checks.NAME]``."""
    checks: dict[str, dict[str, Any]] = {}
    index = 0
    for svc in services_for(cfg, group):
        port = svc["internal_port"]
        for kind in ("http", "tcp"):
            for check in svc[f"{kind}_checks"]:
                checks[f"servicecheck-{index:02d}-{kind}-{port}"] = _check_spec(kind, port, check)
                index += 1
    checks.update(top_checks(cfg, group))
    return checks


def top_checks(cfg: Config, group: str) -> dict[str, dict[str, Any]]:
    """``[checks.NAME]`` of the group: the machine config's ``checks``."""
    top = cfg.get("checks")
    out: dict[str, dict[str, Any]] = {}
    if isinstance(top, dict):
        for name, check in top.items():
            if isinstance(check, dict) and _applies(check, group, cfg):
                out[name] = {k: v for k, v in check.items() if k != "processes"}
    return out


def machine_services(cfg: Config, group: str) -> list[dict[str, Any]]:
    """The machine config's ``services`` (fly-go ``MachineService``): autostop marshals as
    false/true/"suspend" (``MachineAutostop.MarshalJSON``); service checks live here, not in
    ``config.checks``."""
    out = []
    for svc in services_for(cfg, group):
        entry: dict[str, Any] = {
            "protocol": svc["protocol"],
            "internal_port": svc["internal_port"],
            "ports": svc["ports"],
            "checks": [
                _check_spec(kind, svc["internal_port"], check)
                for kind in ("http", "tcp")
                for check in svc[f"{kind}_checks"]
            ],
            "force_instance_key": None,
        }
        if svc["autostop"] is not None:
            entry["autostop"] = {"off": False, "stop": True}.get(svc["autostop"], svc["autostop"])
        if svc["autostart"] is not None:
            entry["autostart"] = bool(svc["autostart"])
        if svc["min_machines_running"] is not None:
            entry["min_machines_running"] = int(svc["min_machines_running"])
        out.append(entry)
    return out


def app_url(cfg: Config, app: str) -> str | None:
    """flyctl ``internal/appconfig/config.go`` ``Config.URL``: https://APP.fly.dev/ for an http_service or a
    tls+http port 443; http:// for an http port 80; else the lowest such port; None without one.
    ``fly deploy`` prints "Visit your newly deployed app at URL" only when there is one."""
    host = f"{app}.fly.dev"
    if isinstance(cfg.get("http_service"), dict):
        return f"https://{host}/"
    https_ports: list[int] = []
    http_ports: list[int] = []
    for svc in _as_list(cfg.get("services")):
        for port in _as_list(svc.get("ports")):
            handlers = port.get("handlers") or []
            if port.get("port") is None or "http" not in handlers:
                continue
            (https_ports if "tls" in handlers else http_ports).append(int(port["port"]))
    if 443 in https_ports:
        return f"https://{host}/"
    if 80 in http_ports:
        return f"http://{host}/"
    if https_ports:
        return f"https://{host}:{min(https_ports)}/"
    if http_ports:
        return f"http://{host}:{min(http_ports)}/"
    return None


def env(cfg: Config) -> dict[str, str]:
    values = cfg.get("env")
    return {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}


def validate(cfg: Config, strategy: str) -> list[str]:
    """The problems flyctl's ``Validate`` reports before ``App configuration is not valid``."""
    problems: list[str] = []
    if strategy not in STRATEGIES:
        problems.append(
            f"unsupported deployment strategy '{strategy}'; must be one of {', '.join(STRATEGIES)}"
        )
    groups = process_groups(cfg)
    has_processes = isinstance(cfg.get("processes"), dict) and bool(cfg.get("processes"))
    if has_processes:
        for svc in services(cfg):
            if svc["_from"] == "services" and not svc["processes"]:
                problems.append(
                    f"Service has no processes set but app has {len(groups)} processes defined; "
                    "update fly.toml to set processes for each service"
                )
    for mount in mounts(cfg):
        if not mount.get("source") or not mount.get("destination"):
            problems.append("mounts require both source and destination")
        elif mount.get("destination") == "/":
            problems.append(f"mount '{mount['source']}' of process group can't use '/' as destination")
    for group in groups:
        if len(mounts_for(cfg, group)) > 1:
            problems.append(f"group '{group}' has more than one mount; only one mount per process group")
    if strategy in ("canary", "bluegreen") and mounts(cfg):
        problems.append(f"error {strategy} deployment strategy is not supported when using mounted volumes")
    if strategy == "bluegreen" and not any(machine_checks(cfg, g) for g in groups):
        problems.append(
            "bluegreen deployment strategy requires at least one health check; "
            "add [[http_service.checks]], [[services.http_checks]] or [checks]"
        )
    return problems
