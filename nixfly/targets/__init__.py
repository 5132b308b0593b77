"""Where a deploy goes: ``fly`` (Fly.io, the default), ``local`` (this machine), ``ssh://user@host[:port]``.

``local`` and ``ssh://`` run the mode's closure the way a Fly Machine would (see ``activate``): a Nix profile
generation per release, the fly toml's env, secrets and volumes, a detached process, the fly toml's health
checks, and the previous release restored when a new one is unhealthy. These functions are what the tasks
call; ``deploy_pipeline`` (in ``targets.deploy``) is the whole deploy for these targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

from nixfly import console, git, lock
from nixfly.buildhost import remote_runner
from nixfly.config import Settings
from nixfly.errors import NixflyError
from nixfly.health import Verdict
from nixfly.pipeline import Outcome, done, planned
from nixfly.remote import Endpoint, RemoteRunner, parse_endpoint, sync_checkout
from nixfly.runner import Runner
from nixfly.targets import closure, profile
from nixfly.targets.activate import Activation, Records, tail
from nixfly.targets.hosts import Host, RemoteHost

__all__ = [
    "Target", "TargetStatus", "deploy_to_target", "logs", "open_host", "parse_target", "remote_runner",
    "rollback", "status", "stop", "sync_checkout",
]

# nixfly's state on an SSH target, under the login user's home (the same layout as `local` uses here).
REMOTE_BASE = PurePosixPath(".local/state/nixfly/local")
TARGET_HINT = "use fly, local or ssh://user@host[:port]"


@dataclass(frozen=True)
class Target:
    kind: str  # fly | local | ssh
    endpoint: Endpoint | None = None

    def __str__(self) -> str:
        return f"ssh://{self.endpoint}" if self.endpoint else self.kind


def parse_target(text: str) -> Target:
    text = (text or "fly").strip()
    if text in ("fly", "local"):
        return Target(text)
    if text.startswith("ssh://"):
        return Target("ssh", parse_endpoint(text))
    raise NixflyError(f"unknown target {text!r}", TARGET_HINT)


def open_host(settings: Settings, target: Target, runner: Runner | None = None) -> Host:
    """Where ``target`` runs. Over SSH nothing connects before the first command (or in a dry-run)."""
    if target.kind == "local":
        local = runner or Runner(dry_run=settings.dry_run, cwd=settings.root)
        return Host("local", local, PurePosixPath(settings.state_dir.resolve()) / "local")
    if target.kind == "ssh" and target.endpoint is not None:
        remote = RemoteRunner(target.endpoint, dry_run=settings.dry_run)
        return RemoteHost(str(target.endpoint), remote, REMOTE_BASE)
    raise NixflyError(f"target {target} is Fly.io: this works on local and ssh:// targets only", TARGET_HINT)


def deploy_to_target(
    settings: Settings,
    target: str,
    runner: Runner,
    *,
    store_path: str,
    force: bool = False,
    rollback: bool = True,
    port: int = 0,
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """Copy (ssh), activate and verify ``store_path`` on ``target``; an unhealthy release is rolled back
    (unless ``rollback`` is off).

    Raises ``NixflyError`` when the release is unhealthy, its message saying what failed and what is live.
    ``port`` replaces the fly toml's internal_port; ``env`` overrides ``[env]`` values (never secrets).
    """
    spec = parse_target(target)
    host = open_host(settings, spec, runner)
    try:
        if spec.endpoint is not None:
            closure.copy(runner, store_path, dest=spec.endpoint)
        activation = Activation(settings, host, port=port, overrides=dict(env or {}))
        try:
            started = activation.activate(store_path, force=force)
            checked = activation.verify()
        except NixflyError as exc:
            activation.restore(exc, auto=rollback)
            raise
        if started.status == "skipped":
            return started
        return Outcome(checked.status, f"{started.detail}; {checked.detail}")
    finally:
        host.close()


@dataclass(frozen=True)
class TargetStatus:
    target: str
    app: str
    pid: int
    health: Verdict | None
    live: dict[str, object] | None
    generations: list[dict[str, object]]


def status(settings: Settings, target: str) -> TargetStatus:
    """Generations, whether the process runs, and its health now; printed as a table, returned as data."""
    spec = parse_target(target)
    host = open_host(settings, spec)
    try:
        activation = Activation(settings, host)
        records = activation.records()
        pid = activation.running_pid()
        live = records.live
        health = None
        if pid and live is not None:
            verdicts = [host.probe(url, settings.health.http_timeout) for url in live.urls()]
            health = Verdict(all(v.healthy for v in verdicts), "; ".join(v.detail for v in verdicts))
        rows = []
        for gen in profile.generations(host, activation.layout.profile):
            recorded = records.last_for(gen.number)
            rows.append({
                "generation": gen.number,
                "created": gen.created,
                "current": gen.current,
                "store_path": profile.store_path(host, activation.layout.profile, gen.number),
                "healthy": recorded.healthy if recorded else None,
            })
    finally:
        host.close()
    state = f"running (pid {pid})" if pid else "not running"
    verdict = f", {'healthy' if health.healthy else 'UNHEALTHY'}: {health.detail}" if health else ""
    console.table(
        f"{settings.app} on {spec}: {state}{verdict}",
        ("generation", "created", "store path", "last check"),
        [(
            f"{r['generation']}{' (current)' if r['current'] else ''}",
            r["created"],
            r["store_path"],
            {True: "healthy", False: "unhealthy", None: "-"}[r["healthy"]],  # type: ignore[index]
        ) for r in rows],
    )
    return TargetStatus(str(spec), settings.app, pid, health, asdict(live) if live else None, rows)


def logs(settings: Settings, target: str, lines: int = 100) -> str:
    """The last ``lines`` lines of the app's log on the target (secret values masked)."""
    host = open_host(settings, parse_target(target))
    try:
        return tail(host, settings, lines)
    finally:
        host.close()


def rollback(settings: Settings, target: str, to: int = 0) -> Outcome:
    """Switch to generation ``to`` (default: the last healthy one before the live one), restart and verify.

    If that generation is unhealthy, the release that was live is restored and the error says so.
    """
    spec = parse_target(target)
    host = open_host(settings, spec)
    try:
        activation = Activation(settings, host)
        records = activation.records()
        generation = to or _previous_healthy(records, activation)
        if settings.dry_run:
            console.say(f"[dry-run] would run generation {generation} of {settings.app} on {spec}, verify it")
            return planned(f"would roll back to generation {generation}")
        revision = git.revision(Runner(cwd=settings.root), settings.root)
        command = f"rollback --target {spec} --to {generation}"
        with lock.held(settings.state_dir, settings.app, revision, command):
            try:
                outcome = activation.switch_to(generation)
            except NixflyError as exc:
                activation.restore(exc)
                raise
        return done(f"generation {generation} live on {spec}: {outcome.detail}")
    finally:
        host.close()


def stop(settings: Settings, target: str) -> str:
    """Stop the app's process on the target: TERM its process group, wait kill_timeout, then KILL."""
    spec = parse_target(target)
    host = open_host(settings, spec)
    try:
        said = Activation(settings, host).stop()
    finally:
        host.close()
    return f"{settings.app} on {spec}: {said}"


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
