"""Activating a release on a target machine, written once for this machine and for SSH hosts.

A release is a store path plus the environment it runs with. Activation: the path becomes a new generation
of the app's profile, the running process is stopped and ``<profile>/<mode.start>`` started detached, then
the fly toml's HTTP checks are polled on the target's localhost until healthy or the deadline (Kamal's
health-gated cutover, on one machine). Each start gets a fresh release id (``NIXFLY_RELEASE``) that the
app's ``/health`` must name, with the mode's ``service``: an answer from the previous process, another
program on the port, or the other half of the same release does not count. An unhealthy release is
stopped and the last healthy one restored (its generation, its recorded environment, today's secrets, as
Fly keeps secrets per app) and verified; the deploy still fails, saying what failed and what is live. The
same path and environment again is "already live": no new generation, no restart.

Layout on the target (``base`` is ``<state_dir>/local`` here, ``~/.local/state/nixfly/local`` over SSH)::

    <base>/<app>/profile, profile-<n>-link   the releases (nix-env generations, GC roots)
    <base>/<app>/releases.json               what is live, and every activation (never a secret value)
    <base>/<app>/deploy.lock/holder.json     who is deploying the app to this host now (``hostlock``)
    <base>/volumes/<source>                  a [[mounts]] volume
    <base>/logs/<app>.log                    the process's output, appended
    <base>/run/<app>.pid                     the running process (a session leader)
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from secrets import token_hex
from typing import Any

from nixfly import bundle, console, envfiles, flytoml
from nixfly.config import Settings
from nixfly.errors import NixflyError
from nixfly.flysecrets import Fingerprints
from nixfly.hosts import environment, profile, service
from nixfly.hosts.environment import Environment
from nixfly.hosts.host import Host
from nixfly.pipeline import Outcome, done, planned, skipped
from nixfly.probe import Expect
from nixfly.runner import REDACT, Runner

HISTORY = 20  # activations kept in releases.json
# Generations kept after a healthy release; older ones are deleted so their closures can be collected.
KEEP_GENERATIONS = 5
MKDIR = 'mkdir -p "$@"'


@dataclass(frozen=True)
class Layout:
    base: PurePosixPath
    app: str

    @property
    def app_dir(self) -> PurePosixPath:
        return self.base / self.app

    @property
    def profile(self) -> PurePosixPath:
        return self.app_dir / "profile"

    @property
    def record(self) -> PurePosixPath:
        return self.app_dir / "releases.json"

    @property
    def lock(self) -> PurePosixPath:
        return self.app_dir / "deploy.lock"

    @property
    def volumes(self) -> PurePosixPath:
        return self.base / "volumes"

    @property
    def log(self) -> PurePosixPath:
        return self.base / "logs" / f"{self.app}.log"

    @property
    def pidfile(self) -> PurePosixPath:
        return self.base / "run" / f"{self.app}.pid"


@dataclass(frozen=True)
class HostRelease:
    """One activation. ``env`` is the public part only; secrets are named, never stored."""

    generation: int
    store_path: str
    env: dict[str, str]
    secret_names: list[str]
    digest: str
    port: int
    checks: list[str]
    at: str = ""
    healthy: bool = False
    # What the running process's /health names (NIXFLY_RELEASE); fresh for every start.
    release_id: str = ""

    @classmethod
    def from_json(cls, data: Any) -> HostRelease | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                generation=int(data["generation"]),
                store_path=str(data["store_path"]),
                env={str(k): str(v) for k, v in dict(data.get("env") or {}).items()},
                secret_names=[str(n) for n in data.get("secret_names") or []],
                digest=str(data.get("digest", "")),
                port=int(data.get("port", 0)),
                checks=[str(c) for c in data.get("checks") or ["/"]],
                at=str(data.get("at", "")),
                healthy=bool(data.get("healthy", False)),
                release_id=str(data.get("release_id", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.port}{path}" for path in self.checks]


@dataclass
class Records:
    live: HostRelease | None = None
    history: list[HostRelease] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Records:
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            console.warn("releases.json is unreadable: treating the target as having no releases")
            data = {}
        history = [r for r in (HostRelease.from_json(d) for d in data.get("history") or []) if r is not None]
        return cls(HostRelease.from_json(data.get("live")), history)

    def dump(self) -> str:
        return (
            json.dumps(
                {
                    "live": asdict(self.live) if self.live else None,
                    "history": [asdict(r) for r in self.history],
                },
                indent=2,
            )
            + "\n"
        )

    def last_for(self, generation: int) -> HostRelease | None:
        return next((r for r in reversed(self.history) if r.generation == generation), None)


# Warnings about this checkout's .env.fly, already shown: they hold for every host and every activation.
_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        console.warn(message)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Activation:
    """Activation of ``settings``' mode and app on ``host``. ``port``/``overrides`` adjust the environment.

    ``here`` is this machine's runner (``.env.fly`` is checked with it when no deploy handed over secrets)."""

    settings: Settings
    host: Host
    here: Runner
    port: int = 0
    overrides: Mapping[str, str] = field(default_factory=dict)
    previous: HostRelease | None = None  # live before this activation: what a failure restores
    candidate: HostRelease | None = None  # started by this activation
    verified: bool = False  # whether the candidate passed its checks (a group may still roll it back)
    # The secrets a release gets: the deploy's (``Candidate.secrets``, read once by the engine's bundle
    # step); None until then, and in a rollback, where ``.env.fly`` is read once, on first use.
    secrets: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        self.layout = Layout(self.host.base, self.settings.app)
        self.cfg = flytoml.load(self.settings.fly_config)
        self.grace = environment.kill_timeout(self.cfg)

    @property
    def where(self) -> str:
        return f"{self.settings.app} on {self.host.name}"

    # --- reading the target ---------------------------------------------------------------------------------
    def records(self) -> Records:
        return Records.parse(self.host.read_text(self.layout.record))

    def running_pid(self) -> int:
        return service.pid(self.host, self.layout.pidfile)

    def environment(self, public: Mapping[str, str] | None = None) -> Environment:
        """The environment for a new release, or (``public`` given) a recorded one with today's secrets."""
        s = self.settings
        if self.secrets is None:
            read, warning = bundle.read_env_fly(s.root, s.env_file, self.here)
            if warning:
                _warn_once(warning)
            self.secrets = read
        secrets = dict(self.secrets)
        missing = [name for name in s.mode.required_secrets if not secrets.get(name)]
        if missing:
            _warn_once(f"{s.env_file.name} lacks {', '.join(missing)}: the app may fail (`inv bundle`)")
        if public is not None:
            return Environment(public=dict(public), secret=secrets)
        port = environment.http_port(self.cfg, self.port)
        overrides = {**dict(s.mode.host_env), **self.overrides}
        return environment.compose(
            self.cfg, secrets, volumes=self.layout.volumes, port=port, overrides=overrides
        )

    def _release(self, generation: int, store_path: str, env: Environment) -> HostRelease:
        prints = Fingerprints(self.settings.state_dir, self.settings.app)
        return HostRelease(
            generation=generation,
            store_path=store_path,
            env=env.public,
            secret_names=sorted(env.secret),
            digest=env.digest(prints, create_key=not self.host.dry_run),
            port=int(env.public.get("PORT") or environment.http_port(self.cfg, self.port)),
            checks=environment.check_paths(self.cfg, self.settings),
            at=_now(),
        )

    # --- the steps ------------------------------------------------------------------------------------------
    def activate(
        self, store_path: str, *, force: bool = False, secrets: Mapping[str, str] | None = None
    ) -> Outcome:
        """Make ``store_path`` the running release (not yet verified: ``verify`` follows) with ``secrets``
        (the deploy's; None: ``.env.fly``'s), which a restore of the previous release gets too."""
        if secrets is not None:
            self.secrets = dict(secrets)
        env = self.environment()
        release = self._release(0, store_path, env)
        records = self.records()
        live = records.live
        pid = self.running_pid()
        now = profile.current(self.host, self.layout.profile)
        if (
            not force
            and live is not None
            and pid
            and now is not None
            and now.number == live.generation
            and live.store_path == store_path
            and live.digest == release.digest
        ):
            return skipped(
                f"already live on {self.host.name}: generation {live.generation}, pid {pid} "
                "(--force restarts it)"
            )
        if not pid:
            self._refuse_busy_port(release.port)
        self.previous = live
        self._prepare()
        generation = profile.set_path(self.host, self.layout.profile, store_path)
        number = generation.number if generation else 0
        # Known before its start: a start that fails still leaves restore a release to undo.
        self.candidate, self.verified = replace(release, generation=number), False
        self.candidate = replace(self.candidate, release_id=self._restart(env))
        if self.host.dry_run:
            return planned(f"would make {store_path} a new generation on {self.host.name} and start it")
        return done(f"generation {self.candidate.generation} started on {self.host.name} ({store_path})")

    def verify(self) -> Outcome:
        """Wait for the candidate's checks; records it as live when healthy."""
        release = self.candidate
        if release is None:
            return skipped("nothing was started")
        if self.host.dry_run:
            return planned(f"would poll {', '.join(release.urls())} on {self.host.name}")
        detail = self._wait_healthy(release)
        self._record(release, healthy=True)
        self.verified = True
        pruned = profile.prune(self.host, self.layout.profile, KEEP_GENERATIONS)
        if pruned:
            detail += f"; pruned generation(s) {', '.join(map(str, pruned))}"
        return done(f"generation {release.generation} healthy: {detail}")

    def live_url(self) -> str:
        """Where the live release answers on its host, or "" before one is."""
        live = self.records().live
        return f"http://127.0.0.1:{live.port}" if live and live.port else ""

    def restore(self, exc: NixflyError, *, auto: bool = True) -> Outcome:
        """After a failed activation or verify: stop it, bring ``previous`` back, amend ``exc`` to say so.

        Also for a candidate that passed its checks when another host of its group failed: it goes back
        too, and stays recorded as healthy. Never raises: a restore that fails too is reported in ``exc``
        and in the returned outcome.
        """
        if self.host.dry_run or self.candidate is None:
            return skipped("nothing was started")
        failed, previous, verified = self.candidate, self.previous, self.verified
        self.candidate, self.verified = None, False
        logs = f"{self.layout.log} (`inv logs --target …`)"
        try:
            if not verified:
                self._record(failed, healthy=False)
            if not auto:
                running = "live" if verified else "still running"
                where = f"generation {failed.generation} is {running} on {self.host.name}"
                exc.add_note(f"automatic rollback is off: {where}")
                exc.hint = f"`inv rollback --target …` restores the previous release; its output is in {logs}"
                return skipped("--no-rollback")
            stopped = service.stop(self.host, self.layout.pidfile, self.grace)
            exc.hint = f"the failed release's output is in {logs}"
            if previous is None:
                exc.add_note(f"first deploy of {self.where}: nothing to roll back to ({stopped})")
                return skipped("first deploy: nothing to roll back to")
            profile.switch(self.host, self.layout.profile, previous.generation)
            restored = replace(previous, release_id=self._start(self.environment(previous.env)))
            detail = self._wait_healthy(restored)
            self._record(restored, healthy=True)
        except NixflyError as again:
            what = f"restoring generation {previous.generation}" if previous else "stopping it"
            exc.add_note(f"{what} on {self.host.name} FAILED too: {again.message}")
            exc.hint = f"{self.where} may be down: `inv status --target …`; output in {logs}"
            return Outcome("failed", again.message)
        exc.add_note(
            f"restored the previous release, generation {previous.generation} ({previous.store_path}), "
            f"healthy again on {self.host.name}"
        )
        return done(f"generation {previous.generation} live again: {detail}")

    def switch_to(self, generation: int) -> Outcome:
        """Run generation ``generation`` (with the environment it was recorded with) and verify it."""
        records = self.records()
        recorded = records.last_for(generation)
        store_path = profile.store_path(self.host, self.layout.profile, generation)
        env = self.environment(recorded.env if recorded else None)
        self.previous = records.live
        self._prepare()
        profile.switch(self.host, self.layout.profile, generation)
        self.candidate, self.verified = self._release(generation, store_path, env), False
        self.candidate = replace(self.candidate, release_id=self._restart(env))
        return self.verify()

    def stop(self) -> str:
        """ "stopped", "not running", or "killed after Ns: PIDS"; in a dry-run, what would happen."""
        said = service.stop(self.host, self.layout.pidfile, self.grace)
        return said if not self.host.dry_run else f"would stop it (TERM, {self.grace:g}s, then KILL)"

    # --- helpers --------------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        dirs = [self.layout.app_dir, self.layout.log.parent, self.layout.pidfile.parent, self._workdir()]
        dirs += list(environment.volume_dirs(self.cfg, self.layout.volumes).values())
        unique = [str(d) for d in dict.fromkeys(dirs)]
        self.host.script(f"create {self.layout.app_dir} and its volumes", MKDIR, *unique)

    def _workdir(self) -> PurePosixPath:
        """The first volume, like the image's WorkingDir (/data); else the app's state directory."""
        volumes = list(environment.volume_dirs(self.cfg, self.layout.volumes).values())
        return volumes[0] if volumes else self.layout.app_dir

    def _refuse_busy_port(self, port: int) -> None:
        """Nothing of ours runs: a program answering on the port would take the new release's traffic."""
        if self.host.dry_run and not self.host.reads_in_dry_run:
            return
        answer = self.host.probe(f"http://127.0.0.1:{port}/", self.settings.health.http_timeout)
        if answer.status is not None:
            raise NixflyError(
                f"port {port} on {self.host.name} is in use by a program nixfly did not start",
                f"{answer.detail}: stop that program, or deploy on another port with --port",
            )

    def _restart(self, env: Environment) -> str:
        service.stop(self.host, self.layout.pidfile, self.grace)
        return self._start(env)

    def _start(self, env: Environment) -> str:
        """Start the profile's program; returns the release id it was given (what its /health must name)."""
        release_id = token_hex(8)
        program = self.layout.profile / self.settings.mode.start
        exports = env.exports() + f"export NIXFLY_RELEASE={release_id}\n"
        service.start(self.host, self.layout.pidfile, self.layout.log, self._workdir(), program, exports)
        return release_id

    def _wait_healthy(self, release: HostRelease) -> str:
        """Poll every check until all pass from this very start; fail early when the process is gone."""
        health = self.settings.health
        expect = Expect(release=release.release_id, service=self.settings.mode.service)
        deadline = time.monotonic() + health.timeout
        interval = health.interval
        while True:
            if not self.running_pid():
                last = self._log_tail(60)
                raise NixflyError(f"{self.where} exited during the health check: {last}")
            verdicts = [self.host.probe(url, health.http_timeout, expect) for url in release.urls()]
            detail = "; ".join(v.detail for v in verdicts)
            if all(v.healthy for v in verdicts):
                return detail
            if time.monotonic() + interval > deadline:
                raise NixflyError(f"{self.where} is not healthy after {health.timeout:g}s: {detail}")
            time.sleep(interval)
            interval = min(interval * 2, health.max_interval)

    def _log_tail(self, lines: int) -> str:
        """Show what the last start wrote to the log (masked); return its last line for the error message."""
        text = REDACT(service.tail(self.host, self.layout.log, lines)).splitlines()
        starts = [i for i, line in enumerate(text) if service.START_MARK in line]
        output = [line for line in text[starts[-1] + 1 if starts else 0 :] if line.strip()]
        if output:
            console.note(f"its output ({self.layout.log}):")
            for line in output:
                console.note(f"  {line}")
        return f"last log line: {output[-1].strip()}" if output else f"no output (see {self.layout.log})"

    def _record(self, release: HostRelease, *, healthy: bool) -> None:
        records = self.records()
        entry = HostRelease(**{**asdict(release), "healthy": healthy, "at": _now()})
        records.history = [*records.history, entry][-HISTORY:]
        if healthy:
            records.live = entry
        self.host.write_text(self.layout.record, records.dump())


def tail(host: Host, settings: Settings, lines: int) -> str:
    """The log's last ``lines`` lines, with the values of .env.fly masked (an app may print its secrets)."""
    if settings.env_file.exists():
        envfiles.read(settings.env_file)  # registers every value with REDACT
    return REDACT(service.tail(host, Layout(host.base, settings.app).log, lines))
