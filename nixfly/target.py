"""Where a deploy goes, and the one interface every destination implements.

``fly`` (Fly.io, the default) is ``nixfly.fly.FlyTarget``; ``local`` (this machine) and
``ssh://user@host[:port]`` are ``nixfly.hosts.HostTarget``; a group of SSH hosts (``ssh://a,ssh://b`` or a
name from ``nixfly.groups`` in invoke.yaml) is ``nixfly.hosts.GroupTarget``. ``open_target`` is the one
place that picks between them; the engine, the tasks and the tests only ever see a ``Target``. Neither
implementation imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from nixfly.config import validate_hosts
from nixfly.endpoint import Endpoint, parse_endpoint
from nixfly.errors import NixflyError, brief

if TYPE_CHECKING:
    from nixfly.buildhost import BuildHost
    from nixfly.pipeline import Pipeline, Step

TargetKind = Literal["fly", "local", "ssh", "group"]
TARGET_HINT = "use fly, local, ssh://user@host[:port], ssh://a,ssh://b or a group from nixfly.groups"


@dataclass(frozen=True)
class TargetSpec:
    kind: TargetKind
    endpoint: Endpoint | None = None  # ssh: the host
    hosts: tuple[Endpoint, ...] = ()  # group: its hosts, in rollout order
    group: str = ""  # group: the nixfly.groups name it was given by, if any

    def __str__(self) -> str:
        if self.hosts:
            return self.group or ",".join(f"ssh://{e}" for e in self.hosts)
        return f"ssh://{self.endpoint}" if self.endpoint else self.kind


def parse_target(text: str, groups: Mapping[str, tuple[str, ...]] | None = None) -> TargetSpec:
    """``--target``: fly, local, one ``ssh://`` URL, several separated by commas, or a group's name."""
    groups = groups or {}
    if not isinstance(text, str):
        raise NixflyError(f"unknown target {brief(text)}", TARGET_HINT)
    # Not stripped: "ssh://host\n" must not reach a connection as "ssh://host".
    text = text or "fly"
    if text == "fly":
        return TargetSpec("fly")
    if text == "local":
        return TargetSpec("local")
    if "," in text:
        try:
            urls = validate_hosts([part.strip() for part in text.split(",")])
        except NixflyError as exc:
            raise NixflyError(f"--target {brief(text)}: {exc.message}", exc.hint) from None
        return TargetSpec("group", hosts=tuple(parse_endpoint(url) for url in urls))
    if text.startswith("ssh://"):
        return TargetSpec("ssh", parse_endpoint(text))
    if text in groups:
        return TargetSpec("group", hosts=tuple(parse_endpoint(url) for url in groups[text]), group=text)
    defined = ", ".join(sorted(groups)) or "none defined"
    raise NixflyError(f"unknown target {brief(text)}", f"{TARGET_HINT} in invoke.yaml ({defined})")


@dataclass(frozen=True)
class Options:
    """The deploy flags every target honours."""

    skip_build: bool = False
    skip_smoke: bool = False
    rollback: bool = True
    force: bool = False
    json_summary: bool = False
    # Host groups: how many hosts switch at once, each batch health-gated before the next.
    batch: int = 1


@dataclass
class Candidate:
    """What this deploy ships, filled in by the shared steps and read by the target's own steps."""

    store_path: str = ""
    # The pinned flake source (``BuildHost.pinned``) the closure was built from; "" with --skip-build.
    # The image is built from it too, so it holds the closure the smoke tests ran.
    source: str = ""
    # Where the closure was built (None: here); a host target copies it from there.
    built_on: Endpoint | None = None
    # The secrets bundled for this deploy (in a dry-run: what would be bundled).
    secrets: dict[str, str] | None = None
    # The smoke result for store_path (for the receipt): passed, passed before, skipped (--skip-smoke).
    smoke: str = ""


class Target(Protocol):
    """A destination: its part of the deploy pipeline, and what the tasks ask of it afterwards."""

    spec: TargetSpec

    def preflight(self, build: BuildHost, *, skip_build: bool) -> list[str]:
        """Check what this target needs before anything changes; returns what was checked."""

    def observe(self) -> None:
        """Start reading the current state (concurrently, in the background): the lock is held now."""

    def deploy_steps(self, candidate: Candidate, build: BuildHost) -> list[Step]:
        """The steps after build, smoke and bundle: apply what changed, then verify (as the ``Options`` the
        target was opened with say)."""

    def recover(self, pipeline: Pipeline, step: str, error: NixflyError) -> None:
        """After ``step`` failed: put the previous release back if one was made (notes on ``error``)."""

    def interrupted(self, step: str) -> str:
        """After a Ctrl-C during ``step``: what is live now and how to go back, for the user."""

    def finish(self) -> None:
        """After a healthy deploy: say where the app answers."""

    def label(self) -> str:
        """Where the deploy goes, after the app's name in messages: " on ssh://host"; "" for Fly (the
        default)."""

    def deploy_command(self) -> str:
        """The ``deploy`` task line that repeats this run (after a failure: finished steps are skipped)."""

    def status(self, *, as_json: bool) -> None: ...

    def releases(self, *, as_json: bool) -> None:
        """``inv releases``: the app's releases (a host's generations), newest first, with their receipts."""

    def diff(self, old: str, new: str, *, as_json: bool) -> None:
        """``inv diff --target``: release ``old`` (default: the live one) against ``new`` (default: the
        working tree's last build), read where the releases are kept."""

    def lock_status(self) -> None:
        """``inv lock.status``: the app's deploy lock here, and who holds it."""

    def lock_release(self, *, force: bool) -> None:
        """``inv lock.release``: remove the app's stale deploy lock (any, with ``force``)."""

    def logs(self, *, lines: int, timeout: float) -> str: ...

    def rollback(self, to: int) -> str: ...

    def stop(self) -> str: ...

    def close(self) -> None: ...
