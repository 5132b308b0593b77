"""The Python API tests use to arrange the simulated Fly.io (state, faults, health) and to inspect it.

``home`` is the directory the simulator runs in (the value of ``FLYCTL_SIM_HOME``). Every function takes
the state lock, so it is safe while simulated flyctl processes are running. Command names (for faults and
delays) are canonical paths such as ``"secrets import"``; aliases (``"volume ls"``) are normalised and
``fnmatch`` globs (``"secrets *"``, ``"*"``) are allowed.
"""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from flyctl_sim import clock, health, logstore, rollout, shapes, state
from flyctl_sim.health_server import HealthServer
from flyctl_sim.state import DEFAULT_TOKEN, DEFAULT_VERSION, HOME_ENV, PathLike, State

BIN_DIR = Path(__file__).resolve().parent / "bin"
FLYCTL = BIN_DIR / "flyctl"

__all__ = [
    "BIN_DIR",
    "DEFAULT_TOKEN",
    "FLYCTL",
    "HealthServer",
    "add_image",
    "add_log",
    "add_org",
    "add_taken_name",
    "add_token",
    "app_healthy",
    "apps",
    "calls",
    "clear_faults",
    "crash_machines",
    "create_app",
    "current_release",
    "edit",
    "env",
    "faults",
    "idle",
    "init",
    "inject_fault",
    "login",
    "logout",
    "machine_states",
    "machines",
    "mark_image_unhealthy",
    "read_state",
    "releases",
    "run",
    "secret_statuses",
    "secrets",
    "serve_stale",
    "set_autostop",
    "set_build_output",
    "set_delay",
    "set_health_plan",
    "set_latency",
    "set_secret",
    "set_unbind_delay",
    "set_version",
    "set_volume_host",
    "start_health_server",
    "stop_machines",
    "volumes",
]


# --- environment and whole state -----------------------------------------------------------------------


def env(home: PathLike, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for running the simulator: ``base`` (default ``os.environ``) without any ``FLY_*``
    variable (a developer's real token must not leak in), ``FLYCTL_SIM_HOME=home``, ``bin/`` first on PATH."""
    out = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("FLY_")}
    out[HOME_ENV] = str(home)
    out["PATH"] = os.pathsep.join([str(BIN_DIR), out.get("PATH", os.defpath)])
    return out


def run(
    home: PathLike,
    *args: str,
    stdin: str | bytes | None = None,
    env_extra: Mapping[str, str] | None = None,
    cwd: PathLike | None = None,
    timeout: float = 60,
    prog: str = "flyctl",
) -> subprocess.CompletedProcess[str]:
    """Run the simulated ``flyctl`` (or ``fly``) with ``env(home)`` plus ``env_extra``; text output captured.
    Standard input is ``stdin`` when given, else /dev/null. Runs the script with this interpreter and ``-S``
    (the simulator is stdlib-only; skipping site-packages saves a third of the start-up time)."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-S", str(BIN_DIR / prog), *args],
        input=data if data is not None else None,
        stdin=None if data is not None else subprocess.DEVNULL,
        capture_output=True,
        env={**env(home), **(env_extra or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    out, err = (stream.decode("utf-8", "replace") for stream in (proc.stdout, proc.stderr))
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def init(
    home: PathLike,
    *,
    version: str = DEFAULT_VERSION,
    logged_in: bool = True,
    email: str = state.DEFAULT_EMAIL,
) -> Path:
    """Start a fresh account in ``home`` (created if needed): one personal org, no apps; logged in with
    ``DEFAULT_TOKEN`` unless ``logged_in=False``. Clears calls.jsonl. Returns ``home`` as a Path."""
    path = state.home_dir(home)
    with state.locked(path):
        state.write_unlocked(path, state.default_state(version=version, logged_in=logged_in, email=email))
        (path / state.CALLS_FILE).unlink(missing_ok=True)
    return path


def read_state(home: PathLike) -> State:
    """A consistent copy of the whole state (what the simulated server holds)."""
    return state.snapshot(home)


@contextlib.contextmanager
def edit(home: PathLike) -> Iterator[State]:
    """Mutate the raw state under the lock: ``with control.edit(home) as st: ...``."""
    with state.transaction(home) as st:
        yield st


def deprecate_region(home: PathLike, code: str) -> None:
    """The API marks ``code`` deprecated (fly-go ``Region.Deprecated``)."""
    with edit(home) as st:
        st["deprecated_regions"] = sorted({*st.get("deprecated_regions", []), code})


def set_version(home: PathLike, version: str) -> None:
    """The flyctl version the simulator claims to be (``secrets list -j`` shape, ``version``...)."""
    with edit(home) as st:
        st["version"] = version.lstrip("v")


# --- auth and orgs ---------------------------------------------------------------------------------------


def login(home: PathLike, token: str = DEFAULT_TOKEN) -> str:
    """Save a login (as ``fly auth login`` would); the token becomes valid. Returns it."""
    with edit(home) as st:
        st["auth"]["tokens"].setdefault(token, {"kind": "user", "app": None})
        st["auth"]["saved_token"] = token
    return token


def logout(home: PathLike) -> None:
    """Forget the saved login (env tokens still work if valid)."""
    with edit(home) as st:
        st["auth"]["saved_token"] = None


def add_token(home: PathLike, token: str, *, app: str | None = None) -> str:
    """Make ``token`` valid: a user token, or a deploy token scoped to ``app``."""
    with edit(home) as st:
        st["auth"]["tokens"][token] = {"kind": "deploy" if app else "user", "app": app}
    return token


def add_org(home: PathLike, slug: str, name: str | None = None, *, org_type: str = "SHARED") -> None:
    """Add an organization (with two orgs, ``apps create`` needs ``--org`` when not interactive)."""
    with edit(home) as st:
        st["orgs"].append(
            {"id": f"org_{slug}", "slug": slug, "raw_slug": slug, "name": name or slug, "type": org_type}
        )


def add_taken_name(home: PathLike, name: str) -> None:
    """Mark an app name as taken by someone else on Fly.io (names are global)."""
    with edit(home) as st:
        if name not in st["taken_names"]:
            st["taken_names"].append(name)


# --- apps, secrets, releases, machines, volumes -----------------------------------------------------------


def create_app(home: PathLike, name: str, *, org: str = "personal") -> None:
    """An existing, never-deployed app (as after ``fly apps create``)."""
    with edit(home) as st:
        st["apps"][name] = state.new_app(name, org)


def apps(home: PathLike) -> list[str]:
    """Names of the account's apps."""
    return list(read_state(home)["apps"])


def _app(st: State, app: str) -> dict[str, Any]:
    try:
        record: dict[str, Any] = st["apps"][app]
        return record
    except KeyError:
        raise KeyError(f"no app {app!r} in the simulator state") from None


def secrets(home: PathLike, app: str) -> dict[str, str]:
    """Secret VALUES as the server holds them (to prove values arrived intact)."""
    return {k: v["value"] for k, v in _app(read_state(home), app)["secrets"].items()}


def secret_statuses(home: PathLike, app: str) -> dict[str, str]:
    """``Staged`` / ``Deployed`` per secret name."""
    return {k: v["status"] for k, v in _app(read_state(home), app)["secrets"].items()}


def set_secret(home: PathLike, app: str, name: str, value: str, *, status: str = "Deployed") -> None:
    """Put a secret on the server directly."""
    now = clock.rfc3339()
    with edit(home) as st:
        _app(st, app)["secrets"][name] = {
            "value": value,
            "status": status,
            "created_at": now,
            "updated_at": now,
        }


def releases(home: PathLike, app: str) -> list[dict[str, Any]]:
    """Internal release records, oldest first: ``version``, ``status`` (running/complete/failed),
    ``image_ref``, ``healthy``, ``strategy``, ``reason``, ``description``, ``id``, ``created_at``."""
    return copy.deepcopy(_app(read_state(home), app)["releases"])


def current_release(home: PathLike, app: str) -> dict[str, Any] | None:
    """The release current on the app's machines (None before the first deploy)."""
    return health.current_release(_app(read_state(home), app))


def app_healthy(home: PathLike, app: str) -> bool | None:
    """What the health server would answer now: True (200), False (503), None (unknown app, 404). Unlike a
    real request it starts nothing (see ``rollout.route``)."""
    return health.app_health(read_state(home), app)


def machines(home: PathLike, app: str) -> list[dict[str, Any]]:
    """Machines in ``fly machine list --json`` shape (destroyed ones are gone)."""
    return [shapes.machine_object(m) for m in rollout.active(_app(read_state(home), app))]


def machine_states(home: PathLike, app: str) -> dict[str, str]:
    """``{machine id: state}`` (started, stopped, suspended, created, failed)."""
    return {m["id"]: m["state"] for m in rollout.active(_app(read_state(home), app))}


def volumes(home: PathLike, app: str) -> list[dict[str, Any]]:
    """Volumes in ``fly volumes list --json`` shape (plus ``app``)."""
    return copy.deepcopy(_app(read_state(home), app)["volumes"])


def set_volume_host(home: PathLike, app: str, volume_id: str, host_status: str) -> None:
    """The health of a volume's host as the API reports it (``host_status``: ``ok``, ``unreachable``, …);
    ``fly deploy`` and ``fly scale count`` reuse an unattached volume only when it is ``ok``."""
    with edit(home) as st:
        volume = next((v for v in _app(st, app)["volumes"] if v["id"] == volume_id), None)
        if volume is None:
            raise KeyError(f"{app} has no volume {volume_id}")
        volume["host_status"] = host_status


def set_unbind_delay(home: PathLike, app: str, calls: int) -> None:
    """From now on, a destroyed machine's volume stays bound to it for the next ``calls`` volume API calls
    (``volumes list``/``destroy``), as Fly unbinds it some time after the machine is gone (0: at once)."""
    with edit(home) as st:
        _app(st, app)["_sim_unbind_delay"] = calls


# --- images and health -------------------------------------------------------------------------------------


def add_image(home: PathLike, ref: str) -> None:
    """Make ``deploy --image ref`` find the image (as if pushed to registry.fly.io earlier)."""
    with edit(home) as st:
        if ref not in st["known_images"]:
            st["known_images"].append(ref)


def mark_image_unhealthy(home: PathLike, pattern: str) -> None:
    """Machines running an image matching this ``fnmatch`` pattern fail their health checks."""
    with edit(home) as st:
        if pattern not in st["unhealthy_images"]:
            st["unhealthy_images"].append(pattern)


def set_health_plan(home: PathLike, app: str, plan: list[str]) -> None:
    """Queue of outcomes, one consumed per ``fly deploy`` of ``app`` (an empty queue means pass), for every
    machine that deploy starts: ``"pass"``; ``"fail"`` (started, checks critical, /health 503); ``"crash"``
    (the app exits and flyd gives up: ``stopped`` with checks critical; flyctl's smoke checks see it);
    ``"failed"`` (the machine never starts: state ``failed``)."""
    allowed = {*health.HEALTHY, *health.UNHEALTHY, *health.CRASHED, *health.FAILED_STATE}
    bad = [p for p in plan if str(p).lower() not in allowed]
    if bad:
        raise ValueError(f"health plan entries must be 'pass', 'fail', 'crash' or 'failed', got {bad!r}")
    with edit(home) as st:
        st["health_plans"][app] = [str(p).lower() for p in plan]


def drift_digest(home: PathLike, app: str, digest: str) -> None:
    """The next ``fly deploy`` of ``app`` brings its first machine up on ``digest`` instead of the image's
    (shown as ``image_ref.digest`` by ``machines list --json`` / ``status --json``: fly-go machine_types.go
    ``Machine.ImageRef``, a ``MachineImageRef``); every other machine, and later deploys, run the image's."""
    with edit(home) as st:
        st.setdefault("digest_drift", {})[app] = digest


def start_health_server(home: PathLike) -> HealthServer:
    """Serve ``GET /<app>/health`` on 127.0.0.1 (see ``health_server``); ``url_template`` has ``{app}``."""
    return HealthServer(home)


def serve_stale(home: PathLike, app: str, image_ref: str | None) -> None:
    """Make the proxy answer ``/<app>/health`` from a machine still on ``image_ref`` (200, that release), as a
    lagging or unrouted machine would; None restores normal routing."""
    with edit(home) as st:
        stale = st.setdefault("proxy_stale", {})
        if image_ref:
            stale[app] = image_ref
        else:
            stale.pop(app, None)


# --- machines' lives: the proxy, crashes, latency -----------------------------------------------------------


def set_autostop(home: PathLike, app: str, enabled: bool = True) -> None:
    """While enabled, Fly Proxy finds ``app`` idle after every ``fly deploy``, ``scale count`` and secrets
    rollout: machines whose services set ``auto_stop_machines`` stop (or suspend) down to
    ``min_machines_running`` in the primary region, zero elsewhere (``rollout.proxy_idle``)."""
    with edit(home) as st:
        st.setdefault("autostop", {})[app] = bool(enabled)


def idle(home: PathLike, app: str) -> list[str]:
    """Let the proxy see ``app`` idle once, now (whether or not ``set_autostop`` is on). Returns the ids of
    the machines it stopped or suspended."""
    with edit(home) as st:
        return rollout.proxy_idle(st, _app(st, app))


def stop_machines(
    home: PathLike, app: str, machine_ids: list[str] | None = None, *, suspend: bool = False
) -> list[str]:
    """Stop (or suspend) machines as ``fly machine stop`` or the proxy would; their checks stay as last
    reported. Default: every started machine. Returns the ids."""
    now = clock.rfc3339()
    with edit(home) as st:
        record = _app(st, app)
        chosen = [
            m
            for m in rollout.active(record)
            if (m["id"] in machine_ids if machine_ids is not None else m["state"] == "started")
        ]
        for machine in chosen:
            rollout.stop_machine(machine, "suspend" if suspend else "stop", now)
        return [m["id"] for m in chosen]


def crash_machines(
    home: PathLike, app: str, machine_ids: list[str] | None = None, *, state: str = "stopped"
) -> list[str]:
    """The app on these machines (default: every started one) crashes for good: ``stopped`` with checks
    critical and an exit event (``state="stopped"``), or state ``failed``. The proxy will not start them
    again. Returns the ids."""
    if state not in ("stopped", "failed"):
        raise ValueError("state must be 'stopped' or 'failed'")
    now = clock.rfc3339()
    with edit(home) as st:
        record = _app(st, app)
        chosen = [
            m
            for m in rollout.active(record)
            if (m["id"] in machine_ids if machine_ids is not None else m["state"] == "started")
        ]
        for machine in chosen:
            rollout.run_machine(machine, "crash" if state == "stopped" else "failed", now)
        return [m["id"] for m in chosen]


def set_latency(home: PathLike, seconds: float) -> None:
    """Every simulated flyctl invocation (once its arguments parse) waits ``seconds`` before answering, as
    an API round trip would; the environment variable ``FLYCTL_SIM_LATENCY`` overrides it. 0 removes it."""
    with edit(home) as st:
        st["latency"] = max(float(seconds), 0.0)


def set_build_output(home: PathLike, stdout: str | None = None, stderr: str = "") -> None:
    """What a source build (``--nixpacks``, buildpacks, Dockerfile) prints besides flyctl's own lines.
    Default (``stdout=None``): a build step's lines with braces on stdout (``deploy.DEFAULT_BUILD_STDOUT``;
    stderr for a Dockerfile build, as flyctl's BuildKit display), so a client reading the release JSON must
    find its line rather than decode from the first ``{``.
    ``stdout=""`` prints none."""
    with edit(home) as st:
        st["build_output"] = None if stdout is None and not stderr else {"stdout": stdout, "stderr": stderr}


# --- faults, delays, logs, calls ---------------------------------------------------------------------------


def inject_fault(
    home: PathLike,
    command: str,
    times: int = 1,
    exit_code: int = 1,
    message: str | None = None,
    delay: float = 0.0,
    after_effect: bool = False,
) -> None:
    """The next ``times`` invocations of ``command`` (``-1``: all) sleep ``delay`` seconds, then fail with
    ``message`` on stderr and ``exit_code`` -- before doing anything, or after doing their work when
    ``after_effect`` is true (a flyctl that failed half-way)."""
    from flyctl_sim.cli import canonical  # the command tree knows the aliases

    path = canonical(command)
    with edit(home) as st:
        st["faults"].append(
            {
                "command": path,
                "times": times,
                "exit_code": exit_code,
                "message": message
                if message is not None
                else f'Error: simulated failure of "{path}" (injected)',
                "delay": float(delay),
                "after_effect": after_effect,
            }
        )


def clear_faults(home: PathLike) -> None:
    with edit(home) as st:
        st["faults"] = []


def faults(home: PathLike) -> list[dict[str, Any]]:
    """Faults not used up yet."""
    pending: list[dict[str, Any]] = read_state(home)["faults"]
    return pending


def set_delay(home: PathLike, command: str, seconds: float) -> None:
    """Every invocation of ``command`` sleeps ``seconds`` first, then succeeds normally (0 removes it)."""
    from flyctl_sim.cli import canonical

    path = canonical(command)
    with edit(home) as st:
        if seconds > 0:
            st["delays"][path] = float(seconds)
        else:
            st["delays"].pop(path, None)


def add_log(
    home: PathLike, app: str, message: str, *, machine: str = "", region: str = "iad", level: str = "info"
) -> None:
    """Append a line to the app's logs (``fly logs`` prints it; a tailing ``fly logs`` picks it up)."""
    with edit(home) as st:
        logstore.append(st, app, message, instance=machine, region=region, level=level)


def calls(home: PathLike) -> list[dict[str, Any]]:
    """Every recorded invocation: ``argv`` (without the program name), ``prog``, ``cwd``, ``command``
    (canonical path or None), ``stdin_bytes`` (a count, never the content), ``exit``, ``ts``, ``duration``."""
    with state.locked(home):
        return state.read_calls(home)


def image_build(home: PathLike, image_ref: str) -> dict[str, Any] | None:
    """How the simulated Fly built ``image_ref`` (``{"builder": "nixpacks", "config": FILE}``), or None for an
    image that was pushed, not built."""
    return copy.deepcopy(read_state(home).get("image_builds", {}).get(image_ref))
