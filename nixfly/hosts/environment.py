"""What a release's process gets from the mode's fly toml, translated for a plain machine.

Fly runs the app with the toml's ``[env]``, the app's secrets, its ``[[mounts]]`` and traffic on
``[http_service] internal_port``. On a target without Fly: ``[env]`` as is, secrets from ``.env.fly``, each
mount a directory under the target's state (env values naming the mount destination are rewritten to it),
and PORT/WEB_PORT set to the port the health check polls. Secrets are kept apart from everything else: they
are only ever written to the starting process's stdin, never recorded, shown or put on a command line.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from nixfly.config import Settings, validate_env_name
from nixfly.errors import NixflyError
from nixfly.flysecrets import Fingerprints
from nixfly.flytoml import FlyToml

DEFAULT_KILL_TIMEOUT = 5.0  # Fly's default kill_timeout
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")


@dataclass(frozen=True)
class Environment:
    public: dict[str, str]  # may be recorded and shown
    secret: dict[str, str]  # stdin only

    def exports(self) -> str:
        """``export NAME='value'`` lines for the start script's stdin; secrets beat ``[env]`` (as on Fly)."""
        merged = {**self.public, **self.secret}
        return "".join(f"export {validate_env_name(k)}={shlex.quote(v)}\n" for k, v in merged.items())

    def digest(self, prints: Fingerprints, *, create_key: bool) -> str:
        """Same digest ⇔ same environment; secrets enter as keyed fingerprints, so it reveals none of them."""
        secrets = {k: prints.digest(k, v, create_key=create_key) for k, v in sorted(self.secret.items())}
        return hashlib.sha256(json.dumps([self.public, secrets], sort_keys=True).encode()).hexdigest()


def http_port(cfg: FlyToml, override: int = 0) -> int:
    port = override or cfg.internal_port
    if not port:
        raise NixflyError(
            f"{cfg.path.name} has no [http_service] internal_port: nothing to serve or health-check",
            "add one, or pass --port",
        )
    if not 0 < int(port) < 65536:
        raise NixflyError(f"port {port} is out of range")
    return int(port)


def check_paths(cfg: FlyToml, settings: Settings) -> list[str]:
    """The paths Fly would check (``[[http_service.checks]]``); else the mode's health URL path."""
    paths = [str(c.get("path") or "/") for c in cfg.http_checks]
    return paths or [urlsplit(settings.health_url).path or "/"]


def kill_timeout(cfg: FlyToml) -> float:
    """Seconds between TERM and KILL: Fly's ``kill_timeout`` (``30``, ``"30s"``, ``"1m"``), default 5."""
    raw = cfg.raw.get("kill_timeout")
    if raw is None:
        return DEFAULT_KILL_TIMEOUT
    match = DURATION.fullmatch(str(raw).strip())
    if not match:
        raise NixflyError(f"{cfg.path.name}: kill_timeout {raw!r} is not a duration", 'use e.g. 10 or "10s"')
    value = float(match[1])
    return {"ms": value / 1000, "m": value * 60}.get(match[2] or "s", value)


def volume_dirs(cfg: FlyToml, volumes: PurePosixPath) -> dict[str, PurePosixPath]:
    """Mount destination → the directory standing in for the volume on the target."""
    found = {}
    for mount in cfg.mounts:
        source, destination = str(mount.get("source") or ""), str(mount.get("destination") or "")
        if source and destination.startswith("/") and destination != "/":
            found[destination.rstrip("/")] = volumes / source
    return found


def rewrite_mounts(value: str, mounts: Mapping[str, PurePosixPath]) -> str:
    """``/data`` or ``/data/x`` → the volume's directory (``…/volumes/oneshot_data/x``); others unchanged."""
    for destination, local in mounts.items():
        if value == destination:
            return str(local)
        if value.startswith(destination + "/"):
            return str(local) + value[len(destination) :]
    return value


def compose(
    cfg: FlyToml,
    secrets: Mapping[str, str],
    *,
    volumes: PurePosixPath,
    port: int,
    overrides: Mapping[str, str] | None = None,
) -> Environment:
    """The release's environment: ``[env]`` (mounts rewritten), then the port, then ``overrides``."""
    mounts = volume_dirs(cfg, volumes)
    public = {validate_env_name(k): rewrite_mounts(v, mounts) for k, v in cfg.env.items()}
    # start-oneshot serves web on WEB_PORT, a single app on PORT: both must be what the check polls.
    public.update(PORT=str(port), WEB_PORT=str(port))
    public.update({validate_env_name(k): str(v) for k, v in (overrides or {}).items()})
    return Environment(public=public, secret={validate_env_name(k): v for k, v in secrets.items()})
