"""This machine (``local``) or a Linux host over SSH (``ssh://user@host[:port]``) as a deploy target.

The mode's closure runs the way a Fly Machine would (``activate``): a Nix profile generation per release,
the fly toml's env, secrets and volumes, a detached process, the fly toml's health checks answered by the
new release itself, and the previous release restored when a new one is unhealthy. The deploy's steps here
are host lock → copy → activate → verify (→ rollback). ``GroupTarget`` (``group``) drives several of these.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import PurePosixPath
from typing import Any, TypedDict

from nixfly import closure, closurediff, console, git, lock, plandiff, receipt, sbom
from nixfly.buildhost import BuildHost
from nixfly.config import Settings
from nixfly.console import print_json
from nixfly.errors import NixflyError
from nixfly.hosts import hostdiff, profile, receipts, releases
from nixfly.hosts.activate import Activation, Records, tail
from nixfly.hosts.host import Host, RemoteHost
from nixfly.hosts.hostlock import HostLock, describe
from nixfly.pipeline import Outcome, Pipeline, Step, done, planned, skipped
from nixfly.probe import Expect, Verdict
from nixfly.remote import RemoteRunner
from nixfly.runner import Runner
from nixfly.target import Candidate, Options, TargetSpec

# nixfly's state on an SSH target, under the login user's home (the same layout as `local` uses here).
REMOTE_BASE = PurePosixPath(".local/state/nixfly/local")
# A copy skipped because the host's store already holds the closure (a group counts these).
ALREADY_HELD = "already holds"


def open_host(settings: Settings, here: Runner, spec: TargetSpec) -> Host:
    """Where ``spec`` runs: this machine through ``here``, or over SSH, where nothing connects before the
    first command (or in a dry-run)."""
    if spec.endpoint is not None:
        remote = RemoteRunner(spec.endpoint, dry_run=settings.dry_run)
        return RemoteHost(str(spec.endpoint), remote, REMOTE_BASE)
    return Host("local", here, PurePosixPath(settings.state_dir.resolve()) / "local")


class HostFlags(TypedDict, total=False):
    """The flags a host target is opened with besides the deploy's ``Options`` (a group passes them on)."""

    port: int  # serve and health-check on this port (0: the fly toml's internal_port)
    overrides: Mapping[str, str]  # laid over the mode's environment


class HostTarget:
    def __init__(
        self,
        settings: Settings,
        here: Runner,
        spec: TargetSpec,
        options: Options | None = None,
        *,
        port: int = 0,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.s = settings
        self.spec = spec
        self.here = here
        self.options = options or Options()
        self.host = open_host(settings, here, spec)
        self.port = port
        self.overrides = dict(overrides or {})
        self._activation: Activation | None = None
        self._lock: HostLock | None = None
        self.started_at = ""
        # Set by ``write_receipt``: (generation, path on the host) of the live generation's receipt.
        self.receipt_at: tuple[int, PurePosixPath] | None = None

    @property
    def name(self) -> str:
        """The host, as messages and step names show it: ``local`` or ``user@host[:port]``."""
        return self.host.name

    @property
    def activation(self) -> Activation:
        """Made on first use: over SSH it asks the host for its home directory (a connection)."""
        if self._activation is None:
            self._activation = Activation(
                self.s, self.host, self.here, port=self.port, overrides=self.overrides
            )
        return self._activation

    @property
    def lock(self) -> HostLock:
        """The app's deploy lock on this host (``hostlock``)."""
        if self._lock is None:
            activation = self.activation
            self._lock = HostLock(self.host, activation.layout.lock, activation.where)
        return self._lock

    # --- Target: the deploy ---------------------------------------------------------------------------------
    def preflight(self, build: BuildHost, *, skip_build: bool) -> list[str]:
        if not self.s.mode.start:
            raise NixflyError(
                f"mode {self.s.mode.name} has no `start` command", "set nixfly.modes.<mode>.start"
            )
        checked = []
        if build.endpoint != self.spec.endpoint:
            # The closure moves with `nix copy`, run here.
            if not self.here.which("nix"):
                raise NixflyError("nix not found on PATH", "install Nix with flakes enabled")
            checked.append("nix here")
        for tool in ("nix-env", "setsid"):
            if not self.host.runner.which(tool):
                where = f"{self.host.name}'s PATH" if self.spec.endpoint else "PATH"
                raise NixflyError(f"{tool} not found on {where}", "it runs the releases: install it there")
        checked.append(f"nix-env on {self.host.name}")
        return checked

    def observe(self) -> None:
        """The host's state is read by each step as it goes (a few local reads, or one SSH connection)."""
        self.started_at = receipt.now()  # the lock is held: the release starts here (for its receipt)

    def deploy_steps(self, candidate: Candidate, build: BuildHost) -> list[Step]:
        command = self.deploy_command()
        return [
            ("host lock", lambda: self.claim(command, git.revision(self.here, self.s.root))),
            ("diff", lambda: self.plan_diff(candidate)),
            ("copy", lambda: self.copy(candidate)),
            ("activate", lambda: self.activate(candidate)),
            ("verify", lambda: self.activation.verify()),
            ("receipt", lambda: self.write_receipt(candidate)),
        ]

    def plan_diff(self, candidate: Candidate) -> Outcome:
        """What this deploy changes against the host's live generation (its closure, read here)."""
        s = self.s
        new = candidate.store_path or (os.readlink(s.out_link) if s.out_link.is_symlink() else "")
        live = self.activation.records().live
        if not new or live is None:
            return skipped("nothing to compare: " + ("no build yet" if not new else "no live generation"))
        if os.path.exists(live.store_path):
            old = sbom.manifest_of(self.here, live.store_path)
        else:
            # Collected here, or deployed from another checkout: read it where it lives (one command).
            try:
                there = self.read_live()
            except NixflyError as exc:
                return skipped(f"generation {live.generation} not read on {self.host.name}: {exc.message}")
            if there is None:
                return skipped(f"nothing to compare: no live generation on {self.host.name}")
            old = there.manifest
        changes = closurediff.diff(old, sbom.manifest_of(self.here, new))
        return plandiff.outcome(changes, f"generation {live.generation}", dry=self.s.dry_run)

    def write_receipt(self, candidate: Candidate) -> Outcome:
        """The live generation's receipt, beside it on the host (once per generation)."""
        activation = self.activation
        if self.s.dry_run:
            return planned(f"would write the new generation's receipt beside it on {self.host.name}")
        live = activation.records().live
        if live is None:
            return skipped("no verified generation")
        app_dir = activation.layout.app_dir
        self.receipt_at = (live.generation, receipts.path(app_dir, live.generation))
        if receipts.read(self.host, app_dir, live.generation) is not None:
            return skipped(f"generation {live.generation} has its receipt")
        kept = receipts.made(
            self.s,
            self.here,
            target=str(self.spec),
            generation=live.generation,
            store_path=live.store_path,
            smoke=candidate.smoke if candidate.store_path == live.store_path else "",
            started_at=self.started_at,
        )
        return done(f"generation {live.generation}: {receipts.write(self.host, app_dir, kept)}")

    def claim(self, command: str, revision: str) -> Outcome:
        """Take the app's lock on the host (released by ``close``), before anything there changes."""
        self.lock.acquire(revision, command)
        if self.s.dry_run:
            return planned(f"would lock {self.activation.where}")
        return done(f"{self.activation.where} locked by pid {os.getpid()}")

    def copy(self, candidate: Candidate) -> Outcome:
        source, dest = candidate.built_on, self.spec.endpoint
        if source == dest:
            return skipped(f"built on {self.host.name}: nothing to copy")
        if self.s.dry_run and not candidate.store_path:
            return planned(f"would copy the closure from {source or 'here'} to {dest or 'here'}")
        # One cheap query over the open connection (a dry-run opens none): unchanged means not copied.
        if not self.s.dry_run and closure.holds(self.host.runner, candidate.store_path, dest=dest):
            return skipped(f"{self.host.name} {ALREADY_HELD} {candidate.store_path}")
        closure.copy(self.here, candidate.store_path, source=source, dest=dest)
        if self.s.dry_run:
            return planned(f"would copy {candidate.store_path} to {dest or 'here'}")
        return done(f"copied {candidate.store_path} from {source or 'here'} to {dest or 'here'}")

    def activate(self, candidate: Candidate) -> Outcome:
        if self.s.dry_run and not candidate.store_path:
            console.say(f"{self.host.label}[dry-run] would make the build a new generation and restart it")
            return planned(f"would activate the new build on {self.host.name}")
        return self.activation.activate(
            candidate.store_path, force=self.options.force, secrets=candidate.secrets
        )

    def recover(self, pipeline: Pipeline, step: str, error: NixflyError) -> None:
        if step in ("activate", "verify"):
            activation = self.activation
            pipeline.run_extra("rollback", lambda: activation.restore(error, auto=self.options.rollback))

    def interrupted(self, step: str) -> str:
        if self._activation is None:
            return ""
        started = self._activation.candidate
        if step in ("activate", "verify") and started is not None and not self.s.dry_run:
            back = self.activation.previous
            checked = "verified" if self._activation.verified else "unverified"
            said = f"generation {started.generation} runs {checked} on {self.host.name}; not rolled back"
            if back is None:
                return said
            return f"{said}: `inv rollback --target {self.spec}` puts generation {back.generation} back"
        return ""

    def finish(self) -> None:
        live = self.activation.live_url() if self._activation is not None else ""
        if live:
            console.ok(f"{self.s.app} answers at {live}; `inv stop --target {self.spec}` ends it")

    # --- Target: what the tasks ask afterwards --------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        """What ``inv status --json`` says of this host: generations, the process, its health now."""
        activation = self.activation
        records = activation.records()
        pid = activation.running_pid()
        live = records.live
        health = None
        if pid and live is not None:
            expect = Expect(release=live.release_id, service=self.s.mode.service)
            verdicts = [self.host.probe(url, self.s.health.http_timeout, expect) for url in live.urls()]
            health = Verdict(all(v.healthy for v in verdicts), "; ".join(v.detail for v in verdicts))
        rows = []
        for gen in profile.generations(self.host, activation.layout.profile):
            recorded = records.last_for(gen.number)
            rows.append(
                {
                    "generation": gen.number,
                    "created": gen.created,
                    "current": gen.current,
                    "store_path": profile.store_path(self.host, activation.layout.profile, gen.number),
                    "healthy": recorded.healthy if recorded else None,
                }
            )
        return {
            "target": str(self.spec),
            "app": self.s.app,
            "pid": pid,
            "health": asdict(health) if health else None,
            "live": asdict(live) if live else None,
            "generations": rows,
        }

    def status(self, *, as_json: bool) -> None:
        """Generations, whether the process runs, and its health now."""
        shown = self.document()
        health = shown["health"]
        state = f"running (pid {shown['pid']})" if shown["pid"] else "not running"
        verdict = f", {'healthy' if health['healthy'] else 'UNHEALTHY'}: {health['detail']}" if health else ""
        checks = {True: "healthy", False: "unhealthy", None: "-"}
        console.table(
            f"{self.s.app} on {self.spec}: {state}{verdict}",
            ("generation", "created", "store path", "last check"),
            [
                (
                    f"{r['generation']}{' (current)' if r['current'] else ''}",
                    r["created"],
                    r["store_path"],
                    checks[r["healthy"]],
                )
                for r in shown["generations"]
            ],
        )
        if as_json:
            print_json(shown)

    def logs(self, *, lines: int, timeout: float) -> str:
        return tail(self.host, self.s, lines)

    def rollback(self, to: int) -> str:
        """Switch to generation ``to`` (default: the last healthy one before the live one), restart, verify.

        If that generation is unhealthy, the release that was live is restored and the error says so.
        """
        s = self.s
        generation = self.rollback_generation(to)
        if self.s.dry_run:
            console.say(f"[dry-run] would run {which(generation)} of {s.app} on {self.spec}, verify it")
            return f"would roll back to {which(generation)}"
        command = f"rollback --target {self.spec} --to {generation}"
        revision = git.revision(self.here, s.root)
        with lock.held(s.state_dir, s.app, revision, command):
            self.claim(command, revision)
            try:
                return f"generation {generation} live on {self.spec}: {self.go_back(generation)}"
            finally:
                self.lock.release()

    def rollback_generation(self, to: int) -> int:
        """What ``inv rollback`` goes back to here: ``to`` (checked), or the previous healthy generation
        (0 in a dry-run over SSH, which reads nothing: "the previous healthy one", unresolved)."""
        activation = self.activation
        if not to:
            if self.s.dry_run and not self.host.reads_in_dry_run:
                return 0
            return _previous_healthy(activation.records(), activation)
        known = [g.number for g in profile.generations(self.host, activation.layout.profile)]
        if known and to not in known:
            raise NixflyError(
                f"{activation.where} has no generation {to}",
                f"generations: {', '.join(map(str, known))} (`inv status --target …` lists them)",
            )
        return to

    def go_back(self, generation: int) -> str:
        """Run ``generation`` and verify it; if it is unhealthy, restore what was live (and raise)."""
        activation = self.activation
        try:
            return activation.switch_to(generation).detail
        except NixflyError as exc:
            activation.restore(exc)
            raise

    def stop(self) -> str:
        """Stop the app's process: TERM its process group, wait kill_timeout, then KILL."""
        if self.s.dry_run:
            return f"{self.s.app} on {self.spec}: {self.activation.stop()}"
        self.claim(f"stop --target {self.spec}", git.revision(self.here, self.s.root))
        try:
            return f"{self.s.app} on {self.spec}: {self.activation.stop()}"
        finally:
            self.lock.release()

    def read_live(self) -> hostdiff.Live | None:
        """The live generation's manifest, read on the host: over its open connection, or in a dry-run over
        SSH (which opens none otherwise) over one opened for this read alone and closed after it."""
        host = self.host
        if not host.dry_run or host.reads_in_dry_run:
            return hostdiff.read(host.runner, self.activation.layout.app_dir, host.name)
        assert self.spec.endpoint is not None  # a host that reads nothing in a dry-run is an SSH host
        # Not a dry-run runner: it runs this one read and nothing else. REMOTE_BASE is under $HOME, which the
        # script resolves (the activation's layout would ask the host for $HOME first: another round trip).
        reader = RemoteRunner(self.spec.endpoint, label=host.label)
        try:
            return hostdiff.read(reader, REMOTE_BASE / self.s.app, host.name)
        finally:
            reader.close()

    def releases(self, *, as_json: bool) -> None:
        releases.show(self.s, [self], as_json=as_json)

    def diff(self, old: str, new: str, *, as_json: bool) -> None:
        releases.between(self.s, self.here, [self], old, new, as_json=as_json)

    def label(self) -> str:
        return f" on {self.spec}"

    def deploy_command(self) -> str:
        return f"deploy --mode {self.s.mode.name} --target {self.spec}"

    def lock_state(self) -> tuple[str, str]:
        """``inv lock.status``: ("free" | "held" | "STALE", who holds it)."""
        holder, _ = self.lock.read()
        if holder is None:
            return "free", ""
        return ("STALE" if self.lock.stale(holder) else "held"), describe(holder)

    def lock_status(self) -> None:
        """The table a group shows (``GroupTarget.lock_status``), with this host's one row."""
        try:
            row = (self.name, *self.lock_state())
        except NixflyError as exc:
            raise NixflyError(f"could not read the lock: {exc.message}", exc.hint) from None
        lock_table(self.s.app, self.spec, [row])

    def lock_release(self, *, force: bool) -> None:
        try:
            holder = self.lock.force_release(force=force)
        except NixflyError as exc:
            raise NixflyError(f"kept the lock: {exc.message}", exc.hint) from None
        console.ok(released(self.s.app, self.name, holder))

    def close(self) -> None:
        """Give back the host lock if this run holds it, and the connection."""
        try:
            if self._lock is not None:
                self._lock.release()
        finally:
            self.host.close()


def lock_table(app: str, spec: TargetSpec, rows: list[tuple[str, ...]]) -> None:
    """``inv lock.status`` on hosts: a row per host (host, lock, holder)."""
    console.table(f"deploy locks of {app} on {spec}", ("host", "lock", "holder"), rows)


def released(app: str, host: str, holder: lock.Holder | None) -> str:
    """What ``inv lock.release`` did on ``host``."""
    what = f"released the lock of {holder.describe()}" if holder else "was not locked"
    return f"{app} on {host}: {what}"


def which(generation: int) -> str:
    """A generation for messages; 0 is the one ``rollback_generation`` could not resolve in a dry-run."""
    return f"generation {generation}" if generation else "its previous healthy generation"


def _previous_healthy(records: Records, activation: Activation) -> int:
    live = records.live
    current = profile.current(activation.host, activation.layout.profile)
    now = live.generation if live else (current.number if current else 0)
    earlier = [r.generation for r in reversed(records.history) if r.healthy and r.generation != now]
    if earlier:
        return earlier[0]
    generations = profile.generations(activation.host, activation.layout.profile)
    older = [g.number for g in generations if g.number < now]
    if older:
        return older[-1]
    raise NixflyError(
        f"{activation.where} has no earlier generation to go back to", "`inv status --target …` lists them"
    )
