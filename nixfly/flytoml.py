"""Reading a fly.toml and judging whether it describes what nixfly deploys (flyctl internal/appconfig/).

``load`` checks the type of every field nixfly reads, as flyctl's own loader would take it
(internal/appconfig: ``patches.go`` turns the loose forms into the strict ones, then ``mapToConfig`` decodes
into ``Config``): a value of the wrong type is one error naming the file and the key, before anything runs,
never a traceback later or a silent default.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nixfly.errors import NixflyError
from nixfly.files import read_bytes

# Go's time.ParseDuration (fly.Duration): "10s", "1m30s", "1.5h", "500ms"; a bare number is seconds
# (patches.go _castDuration).
GO_DURATION = re.compile(r"(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+|0|")
MAX_PORT = 65535


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
    """Parse ``path``; a missing, unreadable or invalid file, or a field of the wrong type, is a
    ``NixflyError`` naming the file (and the key) and the fix."""
    data = _parse(path)
    check = _Fields(path.name)
    http = check.table("http_service", data.get("http_service"))
    check.port("http_service.internal_port", http.get("internal_port"))
    check.whole("http_service.min_machines_running", http.get("min_machines_running"))
    check.names("http_service.processes", http.get("processes"))
    http_checks = check.tables("http_service.checks", http.get("checks"), single=False)
    for index, item in enumerate(http_checks):
        for key in ("method", "path"):
            check.text(f"http_service.checks[{index}].{key}", item.get(key))
    mounts = [
        *check.tables("mounts", data.get("mounts"), single=True),
        *check.tables("mount", data.get("mount"), single=True),
    ]
    for index, mount in enumerate(mounts):
        for key in ("source", "destination"):
            check.text(f"mounts[{index}].{key}", mount.get(key))
        check.names(f"mounts[{index}].processes", mount.get("processes"))
    for index, service in enumerate(check.tables("services", data.get("services"), single=True)):
        check.names(f"services[{index}].processes", service.get("processes"))
        check.port(f"services[{index}].internal_port", service.get("internal_port"))
    check.duration("kill_timeout", data.get("kill_timeout"))
    return FlyToml(
        path=path,
        app=check.text("app", data.get("app")),
        primary_region=check.text("primary_region", data.get("primary_region")),
        processes=check.processes(data.get("processes")),
        mounts=[dict(m) for m in mounts],
        env=check.env(data.get("env")),
        http_checks=[dict(c) for c in http_checks],
        internal_port=http.get("internal_port"),
        raw=data,
    )


def _parse(path: Path) -> dict[str, Any]:
    try:
        data = read_bytes(path, "fix the file, or pass --mode for a mode that has one")
    except NixflyError as exc:
        raise NixflyError(f"fly config {exc.message}", exc.hint) from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise NixflyError(
            f"fly config {path.name} is not UTF-8 text (invalid byte at offset {exc.start})",
            "re-save it as UTF-8",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise NixflyError(
            f"fly config {path.name} is not valid TOML: {exc}", "fix the file and retry"
        ) from None


class _Fields:
    """Type checks of one fly toml's values; each failure names the file and the key (absent: fine)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def wrong(self, key: str, what: str, value: Any) -> NixflyError:
        return NixflyError(
            f"fly config {self.name}: `{key}` must be {what}, not {_kind(value)}", f"fix {key} in {self.name}"
        )

    def table(self, key: str, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.wrong(key, f"a table ([{key}])", value)
        return value

    def tables(self, key: str, value: Any, *, single: bool) -> list[dict[str, Any]]:
        """An array of tables ([[key]]); ``single``: one table is taken as a list of one, as flyctl does."""
        if value is None:
            return []
        if single and isinstance(value, dict):
            return [value]
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            either = f"a table ([{key}]) or " if single else ""
            raise self.wrong(key, f"{either}an array of tables ([[{key}]])", value)
        return value

    def text(self, key: str, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.wrong(key, "a string", value)
        return value

    def names(self, key: str, value: Any) -> None:
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise self.wrong(key, 'a list of process group names (["app"])', value)

    def whole(self, key: str, value: Any, *, low: int = 0, high: int | None = None) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.wrong(key, "a whole number", value)
        if value < low or (high is not None and value > high):
            raise self.wrong(key, f"from {low} to {high}" if high is not None else f"{low} or more", value)

    def port(self, key: str, value: Any) -> None:
        self.whole(key, value, low=1, high=MAX_PORT)

    def duration(self, key: str, value: Any) -> None:
        if value is None:
            return
        seconds = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 10**9
        if not (seconds or (isinstance(value, str) and GO_DURATION.fullmatch(value))):
            raise self.wrong(key, 'a duration such as 10 (seconds) or "10s"', value)

    def processes(self, value: Any) -> dict[str, str]:
        """[processes]: name = command; the old array form ({name, command} tables) as flyctl reads it
        (patches.go patchProcesses)."""
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            value = {str(p["name"]): p.get("command", "") for p in value if "name" in p}
        found = self.table("processes", value)
        for name, command in found.items():
            self.text(f"processes.{name}", command)
        return found

    def env(self, value: Any) -> dict[str, str]:
        """[env]: flyctl formats numbers and booleans as text (patches.go _patchEnv, Go's %v); a table or
        an array as a value would reach the app as Go's rendering of it, so it is refused."""
        found: dict[str, str] = {}
        for section in self.tables("env", value, single=True):
            for name, item in section.items():
                if isinstance(item, bool):
                    found[name] = "true" if item else "false"
                elif isinstance(item, str | int | float):
                    found[name] = str(item)
                else:
                    raise self.wrong(f"env.{name}", "a string, number or boolean", item)
        return found


def _kind(value: Any) -> str:
    """How a TOML value reads in a message: its type, and the value itself when short."""
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string", dict: "a table"}
    kind = "an array" if isinstance(value, list) else kinds.get(type(value), type(value).__name__)
    shown = repr(value)
    return f"{kind} ({shown})" if len(shown) <= 40 else kind


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
    services = cfg.raw.get("services") or []
    if isinstance(services, dict):
        services = [services]
    if cfg.processes:
        for service in services:
            if not service.get("processes"):
                found.append(("error", "a [[services]] entry lists no processes while [processes] is set"))
    if cfg.internal_port is None and not services:
        found.append(("warning", "no [http_service] or [[services]]: the app gets no traffic"))
    if cfg.internal_port is not None and not cfg.http_checks:
        found.append(("warning", "[http_service] has no checks: a broken release would look healthy"))
    for check in cfg.http_checks:
        if check.get("method", "GET").upper() != "GET" or not str(check.get("path", "")).startswith("/"):
            found.append(("warning", f"http check {check} is not a GET of a path"))
    return found
