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
    """``[processes]`` keys in file order, or the implicit ``app`` group."""
    processes = cfg.get("processes")
    return list(processes) if isinstance(processes, dict) and processes else ["app"]


def _as_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _applies(section: dict[str, Any], group: str, groups: list[str]) -> bool:
    wanted = section.get("processes")
    if not wanted:
        # UNVERIFIED for http_service without `processes` in a multi-group app: apply it to every group.
        return True
    return group in wanted


def mounts(cfg: Config) -> list[dict[str, Any]]:
    """``[[mounts]]`` (or a single ``[mounts]`` table)."""
    return _as_list(cfg.get("mounts"))


def mounts_for(cfg: Config, group: str) -> list[dict[str, Any]]:
    groups = process_groups(cfg)
    return [m for m in mounts(cfg) if _applies(m, group, groups)]


def services(cfg: Config) -> list[dict[str, Any]]:
    """``[http_service]`` first (as a service with ``http_checks``), then every ``[[services]]``."""
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
                "ports": [{"port": 80, "handlers": ["http"]}, {"port": 443, "handlers": ["tls", "http"]}],
                "force_https": bool(http.get("force_https", False)),
                "auto_stop_machines": http.get("auto_stop_machines", "off"),
                "auto_start_machines": bool(http.get("auto_start_machines", True)),
                "min_machines_running": http.get("min_machines_running", 0),
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
                "_from": "services",
            }
        )
    return out


def machine_checks(cfg: Config, group: str) -> dict[str, dict[str, Any]]:
    """The machine's ``config.checks``: service checks named ``servicecheck-NN-<type>-<port>``, then
    top-level ``[checks.NAME]``."""
    groups = process_groups(cfg)
    checks: dict[str, dict[str, Any]] = {}
    index = 0
    for svc in services(cfg):
        if not _applies(svc, group, groups):
            continue
        port = svc["internal_port"]
        for kind in ("http", "tcp"):
            for check in svc[f"{kind}_checks"]:
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
                checks[f"servicecheck-{index:02d}-{kind}-{port}"] = entry
                index += 1
    top = cfg.get("checks")
    if isinstance(top, dict):
        for name, check in top.items():
            if isinstance(check, dict) and _applies(check, group, groups):
                checks[name] = {k: v for k, v in check.items() if k != "processes"}
    return checks


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
