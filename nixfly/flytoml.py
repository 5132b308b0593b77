"""Reading a fly.toml and judging whether it describes what nixfly deploys (flyctl.md §8)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nixfly.errors import NixflyError


@dataclass(frozen=True)
class FlyToml:
    path: Path
    app: str
    primary_region: str
    processes: dict[str, str]
    mounts: list[dict[str, Any]]
    env: dict[str, str]
    http_checks: list[dict[str, Any]]
    internal_port: int | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def groups(self) -> list[str]:
        """Process groups; a config without ``[processes]`` runs one implicit group named ``app``."""
        return sorted(self.processes) or ["app"]


def load(path: Path) -> FlyToml:
    """Parse ``path``; a missing or invalid file is a ``NixflyError`` naming the file and the fix."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NixflyError(
            f"fly config {path.name} not found", "create it or pass --mode for a mode that has one"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise NixflyError(
            f"fly config {path.name} is not valid TOML: {exc}", "fix the file and retry"
        ) from None
    http = data.get("http_service") or {}
    mounts = data.get("mounts") or []
    if isinstance(mounts, dict):
        mounts = [mounts]
    processes = data.get("processes") or {}
    if not isinstance(processes, dict):
        raise NixflyError(f"fly config {path.name}: [processes] must be a table of name = command")
    return FlyToml(
        path=path,
        app=str(data.get("app", "")),
        primary_region=str(data.get("primary_region", "")),
        processes={str(k): str(v) for k, v in processes.items()},
        mounts=[dict(m) for m in mounts],
        env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        http_checks=[dict(c) for c in http.get("checks", [])],
        internal_port=http.get("internal_port"),
        raw=data,
    )


def problems(cfg: FlyToml, *, expected_app: str = "", volume: str = "") -> list[tuple[str, str]]:
    """What is wrong or risky, as (``"error"`` | ``"warning"``, message) pairs."""
    found: list[tuple[str, str]] = []
    if not cfg.app:
        found.append(("error", "no `app` key"))
    elif expected_app and cfg.app != expected_app:
        found.append(("warning", f"app = {cfg.app!r} but nixfly deploys {expected_app!r} (--app wins)"))
    if not cfg.primary_region:
        found.append(("warning", "no primary_region: volumes and machines need a region"))
    groups = cfg.groups
    for mount in cfg.mounts:
        if mount.get("destination") in (None, "", "/"):
            found.append(("error", "a [[mounts]] destination must be set and not '/'"))
        targets = mount.get("processes") or groups
        if len(targets) > 1:
            # A volume attaches to one Machine, and each process group runs on its own Machines.
            found.append(
                (
                    "warning",
                    f"volume {mount.get('source')!r} is mounted by groups {targets}: "
                    "groups never share a volume",
                )
            )
    if volume and volume not in {m.get("source") for m in cfg.mounts}:
        found.append(("error", f"no [[mounts]] with source = {volume!r}"))
    if len(groups) > 1:
        local_urls = [k for k, v in cfg.env.items() if "localhost" in v or "127.0.0.1" in v]
        if local_urls:
            found.append(
                (
                    "warning",
                    f"{', '.join(local_urls)} point at localhost but the {len(groups)} process groups run on "
                    "separate Machines: use one group (start-oneshot) or <group>.process.<app>.internal",
                )
            )
    if cfg.processes:
        for service in cfg.raw.get("services", []):
            if not service.get("processes"):
                found.append(("error", "a [[services]] entry lists no processes while [processes] is set"))
    if cfg.internal_port is None and not cfg.raw.get("services"):
        found.append(("warning", "no [http_service] or [[services]]: the app gets no traffic"))
    if cfg.internal_port is not None and not cfg.http_checks:
        found.append(("warning", "[http_service] has no checks: a broken release would look healthy"))
    for check in cfg.http_checks:
        if check.get("method", "GET").upper() != "GET" or not str(check.get("path", "")).startswith("/"):
            found.append(("warning", f"http check {check} is not a GET of a path"))
    return found
