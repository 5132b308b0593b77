"""Everything nixfly knows about the flyctl CLI and Fly's tokens: flags, JSON shapes, error texts.

Only this module runs flyctl (with the argv nixfly.flyctlargv builds), reads its output, or matches its
texts; the rest of nixfly sees typed results and typed errors. Each rule names the flyctl
(github.com/superfly/flyctl, v0.4.87) or fly-go source it follows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nixfly import flyctlargv
from nixfly.errors import CommandError, NixflyError, brief
from nixfly.runner import REDACT, Completed, Runner

# Reads are retried this many times with backoff; mutating calls never are.
READ_RETRIES = 2
# internal/command/auth/whoami.go and the API's answer to an unauthenticated request.
NOT_LOGGED_IN = ("no access token available", "You must be authenticated")
# The GraphQL API's error for a missing app (internal/command/status, apps, volumes …).
APP_MISSING = "Could not find App"
NAME_TAKEN = "Name has already been taken"
# internal/command/deploy: a machine whose checks never pass ("timeout reached waiting for health checks").
HEALTH_TIMEOUT = "waiting for health checks"
LOGIN_HINT = (
    "run `flyctl auth login`, or set FLY_API_TOKEN (a deploy token: `flyctl tokens create deploy -a APP`)"
)
# fly-go tokens/tokens.go Parse: token prefixes that are macaroons (the rest are OAuth/user tokens).
MACAROON_PREFIXES = ("fm1r", "fm1a", "fm2")
# internal/config/config.go applyEnv: env.First(FLY_ACCESS_TOKEN, FLY_API_TOKEN) — the first non-empty wins.
TOKEN_ENV = ("FLY_ACCESS_TOKEN", "FLY_API_TOKEN")
REGISTRY_USER = "x"  # internal/command/auth/docker.go: `x:` + Tokens.Docker()


class NotLoggedIn(NixflyError):
    def __init__(self) -> None:
        super().__init__("flyctl is not logged in", LOGIN_HINT)


class AppMissing(NixflyError):
    """flyctl said the app does not exist."""


class ReleaseUnhealthy(NixflyError):
    """``flyctl deploy`` made a release whose machines never passed their health checks."""


@dataclass(frozen=True)
class Volume:
    id: str
    name: str
    region: str
    state: str
    attached_machine_id: str | None
    size_gb: int = 1
    # fly-go volume_types.go HostStatus: deploy and scale count reuse an unattached volume only when "ok".
    host_status: str = ""


@dataclass(frozen=True)
class SecretInfo:
    name: str
    status: str  # Deployed, Staged, Partial, Unknown; "" for flyctl older than v0.4.6


@dataclass(frozen=True)
class FlyRelease:
    """One of ``flyctl releases``: what the app ran at that version."""

    version: int
    status: str
    image_ref: str
    created_at: str
    description: str

    @property
    def complete(self) -> bool:
        return self.status in ("complete", "succeeded")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # passing | warning | critical


@dataclass(frozen=True)
class Machine:
    id: str
    state: str  # created, started, stopped, suspended, failed, destroying, destroyed, …
    region: str
    image: str
    release_version: int  # config.metadata.fly_release_version; 0 when absent
    group: str
    checks: tuple[Check, ...]
    # Checks its config defines (config.checks + each service's checks): flyctl waits for them only when
    # there are any (leasable_machine.go WaitForHealthchecksToPass counts them from the config, not from
    # the results, which a freshly started machine does not have yet).
    configured_checks: int = 0
    # The manifest digest the machine runs (fly-go machine_types.go ``Machine.ImageRef``, a
    # ``MachineImageRef`` whose ``Digest`` is ``json:"digest,omitempty"``); "" when Fly reports none.
    digest: str = ""


@dataclass(frozen=True)
class AppStatus:
    name: str
    status: str
    version: int
    hostname: str
    machines: tuple[Machine, ...]
    # The object ``status --json`` printed, whole: ``inv status --json`` passes it on (organization, URL, …).
    printed: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Deployed:
    """The line ``FLY_EMIT_RELEASE_JSON`` makes ``flyctl deploy`` print after a successful deploy."""

    id: str
    version: int
    image_ref: str


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


def version_number(version: str) -> tuple[int, int, int] | None:
    """``0.4.87`` (or ``v0.4.87-pre-1``) as (0, 4, 87); None for anything else."""
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def parse_json(text: str, what: str) -> Any:
    """A command's one JSON document; some versions print a notice line first, so start at its bracket."""
    start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
    if start < 0:
        raise NixflyError(f"flyctl printed no JSON for {what}", "run it by hand with --json to see why")
    try:
        return json.loads(text[start:])
    except json.JSONDecodeError:
        raise NixflyError(f"flyctl printed unreadable JSON for {what}", "check `flyctl version`") from None


# --- the shapes flyctl prints -------------------------------------------------------------------------------
# Each read's JSON is checked against what flyctl's source prints before anything is taken from it: an answer
# of another shape (a proxy's page, a changed flyctl, a wrapper) is an error naming the command, never an
# empty list read as "nothing there". Each checker returns "" when the shape is right, else what is wrong.
# A Go nil slice prints as ``null``: where flyctl may print one, null reads as an empty list.


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _items(data: Any, what: str, *, nullable: bool = True) -> tuple[list[Any], str]:
    if data is None and nullable:
        return [], ""
    if not isinstance(data, list):
        return [], f"a JSON {type(data).__name__}, not the list of {what} flyctl prints"
    return data, ""


def _each(data: Any, what: str, check: Callable[[Any], str], *, nullable: bool = True) -> str:
    items, wrong = _items(data, what, nullable=nullable)
    for index, item in enumerate(items):
        if wrong:
            break
        if not isinstance(item, dict):
            return f"{what} #{index + 1} is not an object"
        wrong = check(item)
        if wrong:
            return f"{what} #{index + 1}: {wrong}"
    return wrong


def _text(item: Mapping[str, Any], *keys: str) -> str:
    """ "" when one of ``keys`` holds a string, else what is missing."""
    if any(isinstance(item.get(key), str) for key in keys):
        return ""
    return f"no {' or '.join(keys)} string"


def _release_shape(item: Mapping[str, Any]) -> str:
    # fly-go types.go ``Release``: no json tags, so PascalCase; Version an int.
    version = item.get("Version", item.get("version"))
    return "" if _is_int(version) else "no integer Version"


def _check_shape(item: Mapping[str, Any]) -> str:
    # fly-go machine_types.go ``MachineCheckStatus``: name, status (passing|warning|critical), output.
    return _text(item, "name") or _text(item, "status")


def _machine_shape(item: Mapping[str, Any]) -> str:
    # fly-go machine_types.go ``Machine``: id, state, region, config …
    return _text(item, "id")


def _status_shape(data: Any) -> str:
    # status/machines.go renderMachineJSONStatus: one object, PascalCase, Machines a list (nil: null).
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not the app object flyctl prints"
    if _text(data, "Name", "ID"):
        return "no Name or ID"
    if "Version" in data and not _is_int(data["Version"]):
        return "a Version that is not an integer"
    return _each(data.get("Machines"), "machine", _machine_shape)


def _checks_shape(data: Any) -> str:
    # checks/list.go runChecksList: map[string][]fly.MachineCheckStatus, a (possibly empty) list per machine.
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not the object of machine ids flyctl prints"
    for machine, checks in data.items():
        wrong = _each(checks, "check", _check_shape, nullable=False)
        if wrong:
            return f"machine {brief(machine)}: {wrong}"
    return ""


def _object_with(key: str, what: str) -> Callable[[Any], str]:
    def check(data: Any) -> str:
        if not isinstance(data, dict):
            return f"a JSON {type(data).__name__}, not the {what} object flyctl prints"
        return "" if data.get(key) not in (None, "") else f"no {key}"

    return check


SHAPES: dict[str, Callable[[Any], str]] = {
    # version/version.go: json.Encoder of buildinfo.info (Name, Version, Commit, …).
    "version": _object_with("Version", "version"),
    # auth/whoami.go: {"email": user.Email}.
    "auth whoami": _object_with("email", "user"),
    "status": _status_shape,
    # volumes/list.go: []fly.Volume (volume_types.go, json tags: id, name, state, region, …).
    "volumes list": lambda d: _each(d, "volume", lambda v: _text(v, "id") or _text(v, "name")),
    # secrets/list.go buildSecretRows: name/digest (Name/Digest before v0.3.178).
    "secrets list": lambda d: _each(d, "secret", lambda s: _text(s, "name", "Name")),
    # apps/releases.go runReleases: render.JSON of []fly.Release.
    "releases": lambda d: _each(d, "release", _release_shape),
    # apps/list.go runList: render.JSON of []fly.App (fly-go types: no json tags, so PascalCase Name).
    "apps list": lambda d: _each(d, "app", lambda a: _text(a, "Name")),
    # platform/regions.go runRegions: []fly.Region (json tags: code, name, deprecated, …).
    "platform regions": lambda d: _each(d, "region", lambda r: _text(r, "code"), nullable=False),
    "checks list": _checks_shape,
}


def checked(what: str, data: Any) -> Any:
    """``data`` when it has the shape ``flyctl <what> --json`` prints (``SHAPES``), else an error naming
    the command (what it printed is shown cut short, with known secrets masked)."""
    wrong = SHAPES[what](data)
    if wrong:
        raise NixflyError(
            f"flyctl {what} --json printed {REDACT(brief(data))}: {wrong}, not the shape flyctl prints",
            f"check `flyctl version` (nixfly reads flyctl v0.4.87's output); run `flyctl {what} --json` "
            "to see what it printed",
        )
    return data


def parse_deployed(stdout: str) -> Deployed | None:
    """The release line of ``flyctl deploy`` (machines_deploymachinesapp.go ``DeployMachinesApp``: after
    success, ``json.Marshal`` of {id, version, image_ref} and a newline; deploy.go prints "Visit your newly
    deployed app at …" after it).

    Build output before it may hold ``{`` too, so the line is looked for from the end, whole.
    """
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not (line.startswith("{") and line.endswith("}")):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and set(data) == {"id", "version", "image_ref"}:
            try:
                return Deployed(str(data["id"]), int(data["version"]), str(data["image_ref"]))
            except (TypeError, ValueError):
                return None
    return None


def parse_secrets(data: Any) -> list[SecretInfo]:
    """``secrets list --json`` in all three eras: Name/Digest (<0.3.178), name/digest (…0.4.5), +status."""
    out = []
    for item in _objects(data):
        name = item.get("name") or item.get("Name") or ""
        out.append(SecretInfo(name=str(name), status=str(item.get("status") or item.get("Status") or "")))
    return out


def parse_release(item: Mapping[str, Any]) -> FlyRelease:
    return FlyRelease(
        version=_int(item.get("Version") or item.get("version")),
        status=str(item.get("Status") or item.get("status") or ""),
        image_ref=str(item.get("ImageRef") or item.get("image_ref") or ""),
        created_at=str(item.get("CreatedAt") or item.get("created_at") or ""),
        description=str(item.get("Description") or item.get("description") or ""),
    )


def parse_machine(item: Mapping[str, Any]) -> Machine:
    """One machine of ``machine list --json`` / ``status --json`` (fly-go machine_types.go ``Machine``)."""
    image = item.get("image_ref") or {}
    digest = str(image.get("digest") or "") if isinstance(image, dict) else ""
    if isinstance(image, dict):
        repo = "/".join(p for p in (image.get("registry"), image.get("repository")) if p)
        image = f"{repo}:{image.get('tag')}" if image.get("tag") else repo
    config = _mapping(item.get("config"))
    metadata = _mapping(config.get("metadata"))
    checks = tuple(Check(str(c.get("name")), str(c.get("status"))) for c in _objects(item.get("checks")))
    return Machine(
        id=str(item.get("id", "")),
        state=str(item.get("state", "")),
        region=str(item.get("region", "")),
        image=str(config.get("image") or image),
        release_version=_int(metadata.get("fly_release_version")),
        group=str(metadata.get("fly_process_group") or "app"),
        checks=checks,
        configured_checks=len(_mapping(config.get("checks")))
        + sum(len(_objects(_mapping(svc).get("checks"))) for svc in _objects(config.get("services"))),
        digest=digest,
    )


def parse_status(data: Any) -> AppStatus:
    data = data if isinstance(data, dict) else {}
    return AppStatus(
        name=str(data.get("Name") or data.get("ID") or ""),
        status=str(data.get("Status") or ""),
        version=_int(data.get("Version")),
        hostname=str(data.get("Hostname") or ""),
        machines=tuple(parse_machine(m) for m in _objects(data.get("Machines"))),
        printed=data,
    )


def parse_checks(data: Any) -> dict[str, tuple[Check, ...]]:
    """``checks list --json``: an object keyed by machine id, each a list of {name, status, …}."""
    if not isinstance(data, dict):
        return {}
    return {
        str(mid): tuple(Check(str(c.get("name")), str(c.get("status"))) for c in _objects(checks))
        for mid, checks in data.items()
    }


def registry_password(token: str) -> str:
    """The registry password flyctl itself uses: fly-go tokens/tokens.go ``Tokens.Docker()``.

    ``StripAuthorizationScheme`` (TrimSpace, then drop a leading ``FlyV1``/``Bearer`` word, case-insensitive,
    repeatedly), ``Parse`` (split at ``,``, TrimSpace each, prefix before the first ``_`` of fm1r/fm1a/fm2
    marks a macaroon), ``normalized(false, false)`` (the macaroons joined with ``,`` if there are any, else
    the other tokens). A deploy token as ``fly tokens create deploy`` prints it is ``FlyV1 fm2_…``.
    """
    token = token.strip()
    while True:
        scheme, sep, rest = token.partition(" ")
        if not sep or scheme.strip().lower() not in ("flyv1", "bearer"):
            break
        token = rest.strip()
    macaroons: list[str] = []
    others: list[str] = []
    for part in token.split(","):
        part = part.strip()
        (macaroons if part.split("_", 1)[0] in MACAROON_PREFIXES else others).append(part)
    return ",".join(macaroons) if macaroons else ",".join(others)


def _objects(data: Any) -> list[Mapping[str, Any]]:
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _mapping(data: Any) -> Mapping[str, Any]:
    return data if isinstance(data, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass
class Flyctl:
    """flyctl through the one runner; ``exe`` is looked up on each call: a missing flyctl is a clear error."""

    runner: Runner
    exe: str = "flyctl"

    def _run(
        self,
        args: Sequence[str],
        *,
        read: bool = False,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        retries: int = READ_RETRIES,
        **kw: Any,
    ) -> Completed:
        exe = find_executable(self.exe)
        try:
            result = self.runner.run(
                [exe, *args],
                mutates=not read,
                retries=retries if read and check else 0,
                stdin=stdin,
                env={"FLY_NO_UPDATE_CHECK": "1", **(env or {})},
                check=check,
                **kw,
            )
        except CommandError as exc:
            if any(text in exc.stderr for text in NOT_LOGGED_IN):
                raise NotLoggedIn() from None
            raise
        if result.returncode and any(text in result.stderr for text in NOT_LOGGED_IN):
            raise NotLoggedIn()
        return result

    def _json(self, args: Sequence[str]) -> Any:
        """A read's JSON, checked against its command's shape (``SHAPES``). A missing app is ``AppMissing``
        at once; other failures are retried with backoff."""
        what = flyctlargv.command(args)
        first = self._run(args, read=True, check=False, quiet=True)
        if first.returncode == 0:
            return checked(what, parse_json(first.stdout, what))
        if APP_MISSING in first.stderr:
            raise AppMissing(f"{what}: {first.stderr.strip().splitlines()[-1]}")
        again = self._run(args, read=True, quiet=True, retries=READ_RETRIES - 1)
        return checked(what, parse_json(again.stdout, what))

    # --- reads ----------------------------------------------------------------------------------------------
    def version(self) -> str:
        return str(self._json(flyctlargv.version()).get("Version", "unknown"))

    def release(self) -> tuple[int, int, int] | None:
        """``flyctl version --json`` as (major, minor, patch) (version.go: json.Encoder of buildinfo.Info(),
        ``Version`` like ``0.4.87``); None when it cannot be read, which callers treat as the oldest."""
        try:
            return version_number(self.version())
        except NixflyError:
            return None

    def whoami(self) -> str:
        return str(self._json(flyctlargv.whoami()).get("email", ""))

    def app_status(self, app: str) -> AppStatus | None:
        """The app and its machines (and, in ``printed``, all ``status --json`` said), or None when there is
        no such app.

        Asked with ``status`` rather than ``apps list``: app-scoped deploy tokens may not list apps.
        """
        try:
            return parse_status(self._json(flyctlargv.status(app)))
        except AppMissing:
            return None

    def volumes(self, app: str) -> list[Volume]:
        return [
            Volume(
                id=str(v.get("id", "")),
                name=str(v.get("name", "")),
                region=str(v.get("region", "")),
                state=str(v.get("state", "")),
                attached_machine_id=v.get("attached_machine_id") or None,
                size_gb=_int(v.get("size_gb")) or 1,
                host_status=str(v.get("host_status") or ""),
            )
            for v in _objects(self._json(flyctlargv.volumes_list(app)))
        ]

    def secrets(self, app: str) -> list[SecretInfo]:
        return parse_secrets(self._json(flyctlargv.secrets_list(app)))

    def releases(self, app: str) -> list[FlyRelease]:
        found = (parse_release(r) for r in _objects(self._json(flyctlargv.releases(app))))
        return sorted(found, key=lambda r: r.version, reverse=True)

    def apps(self) -> list[str]:
        """The names of every app the login can see: ``apps list --json`` (internal/command/apps/list.go
        ``runList``: fly-go ``App`` objects, PascalCase, ``Name``). App-scoped deploy tokens cannot list."""
        return [str(a.get("Name") or "") for a in _objects(self._json(flyctlargv.apps_list()))]

    def regions(self) -> list[str]:
        """The codes of the regions Fly offers now (internal/command/platform/regions.go ``runRegions``:
        the Machines API's list, deprecated ones left out; older flyctl printed those too)."""
        return [
            str(r.get("code") or "")
            for r in _objects(self._json(flyctlargv.platform_regions()))
            if not r.get("deprecated")
        ]

    def checks(self, app: str) -> dict[str, tuple[Check, ...]]:
        return parse_checks(self._json(flyctlargv.checks_list(app)))

    def logs(self, app: str, *, timeout: float) -> str | None:
        """Recent logs, or None when flyctl kept polling past ``timeout`` (``--no-tail`` can poll forever
        when there are none)."""
        try:
            result = self._run(flyctlargv.logs(app), read=True, timeout=timeout, quiet=True)
        except CommandError as exc:
            if exc.kind == "timed out":
                return None
            raise
        return result.stdout

    def token(self) -> str:
        """The token flyctl would use: FLY_ACCESS_TOKEN, then FLY_API_TOKEN, else the logged-in session's."""
        for name in TOKEN_ENV:
            if os.environ.get(name, "").strip():
                REDACT.add(os.environ[name])
                return os.environ[name]
        lines = self._run(flyctlargv.auth_token(), read=True, quiet=True).stdout.strip().splitlines()[-1:]
        if not lines:
            raise NixflyError("flyctl printed no token", LOGIN_HINT)
        REDACT.add(lines[0])
        return lines[0]

    def registry_password(self) -> str:
        """What to log in to the Fly registry with (user ``x``), as flyctl derives it from the token."""
        password = registry_password(self.token())
        REDACT.add(password)
        return password

    # --- changes --------------------------------------------------------------------------------------------
    def create_app(self, app: str, org: str = "") -> None:
        try:
            self._run(flyctlargv.apps_create(app, org))
        except CommandError as exc:
            if NAME_TAKEN in exc.stderr:
                raise NixflyError(
                    f"the app name {app!r} is taken on Fly.io (names are global)",
                    "pick another with --app, or set nixfly.modes.<mode>.app in invoke.yaml",
                ) from None
            if "org slug must be specified" in exc.stderr:
                raise NixflyError(
                    "flyctl needs an organization for the new app", "set nixfly.org in invoke.yaml or FLY_ORG"
                ) from None
            raise

    def create_volume(self, app: str, name: str, region: str, size_gb: int) -> Completed:
        return self._run(flyctlargv.volumes_create(app, name, region, size_gb))

    def scale_count(
        self, app: str, *, group: str, region: str, count: int, new_volumes: bool = False
    ) -> Completed:
        """``count`` machines of ``group`` in ``region``: internal/command/scale/count_machines.go.

        The count is the total over the regions acted on (``--region``), so one region per call makes it
        that region's count. New machines clone the group's first machine (image, release, config) and each
        takes an unattached volume of the mount's name in that region whose host is ok, else a new one
        (``new_volumes``: always a new one). Removed machines are destroyed; their volumes stay, detached.
        """
        return self._run(
            flyctlargv.scale_count(app, group=group, region=region, count=count, new_volumes=new_volumes)
        )

    def destroy_app(self, app: str) -> Completed:
        """internal/command/apps/destroy.go ``RunDestroy``: the app goes with its machines and volumes (the
        platform's ``DeleteApp``); prints ``Destroyed app <name>``."""
        return self._run(flyctlargv.apps_destroy(app))

    def destroy_machines(self, app: str, machine_ids: Sequence[str]) -> Completed:
        """internal/command/machine/destroy.go: every ID is looked up first (a missing one fails before any
        is destroyed), then each is destroyed. Their volumes stay, and Fly unbinds them some time later."""
        return self._run(flyctlargv.machine_destroy(app, machine_ids))

    def destroy_volume(self, app: str, volume_id: str) -> Completed:
        """internal/command/volumes/destroy.go: the data is gone for good; the API refuses an attached one."""
        return self._run(flyctlargv.volumes_destroy(app, volume_id))

    def import_secrets(self, app: str, payload: str, *, stage: bool) -> Completed:
        """Values travel on stdin only (argv is world-readable through /proc)."""
        return self._run(flyctlargv.secrets_import(app, stage=stage), stdin=payload)

    def deploy(
        self,
        app: str,
        config: Path,
        *,
        image: str = "",
        nixpacks_config: str = "",
        strategy: str = "",
        cwd: Path | None = None,
        ha: bool = True,
    ) -> Deployed | None:
        """Deploy an image (``--image``) or build with nixpacks; returns the release line when printed."""
        args = flyctlargv.deploy(app, config, image=image, strategy=strategy, ha=ha)
        env = flyctlargv.deploy_env(image=image, nixpacks_config=nixpacks_config)
        try:
            result = self._run(args, env=env, cwd=cwd)
        except CommandError as exc:
            if HEALTH_TIMEOUT in exc.stderr:
                raise ReleaseUnhealthy(exc.message, exc.hint) from None
            raise
        if result.dry_run:
            return None
        # flyctl older than v0.4.56 prints no release line: the newest release is this deploy's.
        found = parse_deployed(result.stdout)
        newest = [] if found else self.releases(app)[:1]
        return found or (Deployed("", newest[0].version, newest[0].image_ref) if newest else None)
