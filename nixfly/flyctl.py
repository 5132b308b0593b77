"""Everything nixfly knows about the flyctl CLI: flags, JSON shapes across versions, error texts.

Reference: shared/reference/flyctl.md. Only this module builds flyctl argv or reads its output.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixfly.errors import NixflyError
from nixfly.runner import REDACT, Completed, Runner

# Reads are retried this many times with backoff; mutating calls never are.
READ_RETRIES = 2
NOT_LOGGED_IN = ("no access token available", "You must be authenticated")
APP_MISSING = "Could not find App"
NAME_TAKEN = "Name has already been taken"
LOGIN_HINT = (
    "run `flyctl auth login`, or set FLY_API_TOKEN (a deploy token: `flyctl tokens create deploy -a APP`)"
)


@dataclass(frozen=True)
class Volume:
    id: str
    name: str
    region: str
    state: str
    attached_machine_id: str | None


@dataclass(frozen=True)
class SecretInfo:
    name: str
    status: str  # Deployed, Staged, Partial, Unknown; "" for flyctl older than v0.4.6


@dataclass(frozen=True)
class Release:
    version: int
    status: str
    image_ref: str
    created_at: str
    description: str


@dataclass(frozen=True)
class Machine:
    id: str
    state: str
    region: str
    image: str
    checks: tuple[tuple[str, str], ...]  # (name, status)


def find_executable(preferred: str) -> str:
    """flyctl on PATH (``NIXFLY_FLYCTL`` or config may name another); ``fly`` is the same program.

    Returns the name when PATH finds it (so echoed commands read ``flyctl …``), else the path given.
    """
    for candidate in (preferred, "fly") if preferred == "flyctl" else (preferred,):
        if shutil.which(candidate):
            return candidate
    raise NixflyError(
        f"{preferred} not found on PATH",
        "install flyctl (it is in the dev shell: `nix develop`) or set NIXFLY_FLYCTL to its path",
    )


def parse_json(text: str, what: str) -> Any:
    """flyctl's JSON output; some versions print a notice line before it, so start at the first bracket."""
    start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
    if start < 0:
        raise NixflyError(f"flyctl printed no JSON for {what}", "run it by hand with --json to see why")
    try:
        return json.loads(text[start:])
    except json.JSONDecodeError:
        raise NixflyError(f"flyctl printed unreadable JSON for {what}", "check `flyctl version`") from None


def iter_json_stream(text: str) -> Iterator[Any]:
    """Concatenated JSON objects (``logs --json``, ``volumes create --json --count N``)."""
    decoder = json.JSONDecoder()
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return
        try:
            obj, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            return
        yield obj


def parse_secrets(data: Any) -> list[SecretInfo]:
    """``secrets list --json`` in all three eras: Name/Digest (<0.3.178), name/digest (…0.4.5), +status."""
    out = []
    for item in data or []:
        name = item.get("name") or item.get("Name") or ""
        out.append(SecretInfo(name=name, status=str(item.get("status") or item.get("Status") or "")))
    return out


def parse_release(item: dict[str, Any]) -> Release:
    return Release(
        version=int(item.get("Version") or item.get("version") or 0),
        status=str(item.get("Status") or item.get("status") or ""),
        image_ref=str(item.get("ImageRef") or item.get("image_ref") or ""),
        created_at=str(item.get("CreatedAt") or item.get("created_at") or ""),
        description=str(item.get("Description") or item.get("description") or ""),
    )


def parse_machine(item: dict[str, Any]) -> Machine:
    image = item.get("image_ref") or {}
    if isinstance(image, dict):
        repo = "/".join(p for p in (image.get("registry"), image.get("repository")) if p)
        image = f"{repo}:{image.get('tag')}" if image.get("tag") else repo
    checks = tuple((str(c.get("name")), str(c.get("status"))) for c in item.get("checks") or [])
    return Machine(
        id=str(item.get("id", "")),
        state=str(item.get("state", "")),
        region=str(item.get("region", "")),
        image=str(image),
        checks=checks,
    )


@dataclass
class Flyctl:
    """flyctl through the one runner; ``exe`` is looked up on each call: a missing flyctl is a clear error."""

    runner: Runner
    exe: str = "flyctl"

    def _run(
        self,
        *args: str,
        read: bool = False,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        **kw: Any,
    ) -> Completed:
        exe = find_executable(self.exe)
        try:
            return self.runner.run(
                [exe, *args],
                mutates=not read,
                retries=READ_RETRIES if read else 0,
                stdin=stdin,
                env={"FLY_NO_UPDATE_CHECK": "1", **(env or {})},
                **kw,
            )
        except NixflyError as exc:
            if any(text in exc.message for text in NOT_LOGGED_IN):
                raise NixflyError("flyctl is not logged in", LOGIN_HINT) from None
            raise

    # --- reads -------------------------------------------------------------------------------------------
    def version(self) -> str:
        data = parse_json(self._run("version", "--json", read=True, quiet=True).stdout, "version")
        return str(data.get("Version", "unknown"))

    def whoami(self) -> str:
        data = parse_json(self._run("auth", "whoami", "--json", read=True, quiet=True).stdout, "auth whoami")
        return str(data.get("email", ""))

    def app_exists(self, app: str) -> bool:
        """Asked with ``status`` rather than ``apps list``: app-scoped deploy tokens may not list apps."""
        result = self._run("status", "--app", app, "--json", read=True, check=False)
        if result.returncode == 0:
            return True
        if APP_MISSING in result.stderr:
            return False
        if any(text in result.stderr for text in NOT_LOGGED_IN):
            raise NixflyError("flyctl is not logged in", LOGIN_HINT)
        # Anything else is a real failure: ask again with retries so a flaky network gets its backoff.
        self._run("status", "--app", app, "--json", read=True)
        return True

    def volumes(self, app: str) -> list[Volume]:
        data = parse_json(
            self._run("volumes", "list", "--app", app, "--json", read=True).stdout, "volumes list"
        )
        return [
            Volume(
                id=str(v.get("id", "")),
                name=str(v.get("name", "")),
                region=str(v.get("region", "")),
                state=str(v.get("state", "")),
                attached_machine_id=v.get("attached_machine_id"),
            )
            for v in data or []
        ]

    def secrets(self, app: str) -> list[SecretInfo]:
        result = self._run("secrets", "list", "--app", app, "--json", read=True)
        return parse_secrets(parse_json(result.stdout, "secrets list"))

    def releases(self, app: str) -> list[Release]:
        data = parse_json(self._run("releases", "--app", app, "--json", read=True).stdout, "releases")
        return sorted((parse_release(r) for r in data or []), key=lambda r: r.version, reverse=True)

    def status(self, app: str) -> dict[str, Any]:
        return parse_json(self._run("status", "--app", app, "--json", read=True).stdout, "status")

    def machines(self, app: str) -> list[Machine]:
        data = parse_json(
            self._run("machine", "list", "--app", app, "--json", read=True).stdout, "machine list"
        )
        return [parse_machine(m) for m in data or []]

    def checks(self, app: str) -> dict[str, list[dict[str, Any]]]:
        data = parse_json(
            self._run("checks", "list", "--app", app, "--json", read=True).stdout, "checks list"
        )
        return data if isinstance(data, dict) else {}

    def logs(self, app: str, *, timeout: float) -> str:
        """Recent logs. ``--no-tail`` can poll forever when there are none, so the call is bounded."""
        result = self._run("logs", "--app", app, "--no-tail", read=True, timeout=timeout, quiet=True)
        return result.stdout

    def token(self) -> str:
        """A token for the registry: the environment's, else the logged-in session's."""
        for name in ("FLY_ACCESS_TOKEN", "FLY_API_TOKEN"):
            if os.environ.get(name):
                return os.environ[name]
        token = self._run("auth", "token", read=True, quiet=True).stdout.strip().splitlines()[-1:]
        if not token:
            raise NixflyError("flyctl printed no token", LOGIN_HINT)
        REDACT.add(token[0])
        return token[0]

    # --- changes -----------------------------------------------------------------------------------------
    def create_app(self, app: str, org: str = "") -> None:
        args = ["apps", "create", app]
        if org:
            args += ["--org", org]
        try:
            self._run(*args)
        except NixflyError as exc:
            if NAME_TAKEN in exc.message:
                raise NixflyError(
                    f"the app name {app!r} is taken on Fly.io (names are global)",
                    "pick another with --app, or set nixfly.modes.<mode>.app in invoke.yaml",
                ) from None
            if "org slug must be specified" in exc.message:
                raise NixflyError(
                    "flyctl needs an organization for the new app", "set nixfly.org in invoke.yaml or FLY_ORG"
                ) from None
            raise

    def create_volume(self, app: str, name: str, region: str, size_gb: int) -> Completed:
        return self._run(
            "volumes", "create", name, "--app", app, "--region", region, "--size", str(size_gb), "--yes"
        )

    def import_secrets(self, app: str, payload: str, *, stage: bool) -> Completed:
        """Values travel on stdin only (argv is world-readable through /proc)."""
        args = ["secrets", "import", "--app", app]
        if stage:
            args.append("--stage")
        return self._run(*args, stdin=payload)

    def deploy(
        self,
        app: str,
        config: Path,
        *,
        image: str = "",
        nixpacks: bool = False,
        strategy: str = "",
        wait_timeout: str = "",
        cwd: Path | None = None,
    ) -> dict[str, Any]:
        """Deploy; returns flyctl's release JSON when it prints one (``FLY_EMIT_RELEASE_JSON``, v0.4.56+)."""
        args = ["deploy", "--app", app, "--config", str(config), "--yes"]
        if image:
            args += ["--image", image]
        elif nixpacks:
            args.append("--nixpacks")
        if strategy:
            args += ["--strategy", strategy]
        if wait_timeout:
            args += ["--wait-timeout", wait_timeout]
        result = self._run(*args, env={"FLY_EMIT_RELEASE_JSON": "1"}, cwd=cwd)
        if result.dry_run:
            return {}
        for obj in iter_json_stream(result.stdout[result.stdout.find("{") :] if "{" in result.stdout else ""):
            if isinstance(obj, dict) and "version" in obj:
                return obj
        return {}
