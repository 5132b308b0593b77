"""Where a deploy goes, and the one interface every destination implements.

``fly`` (Fly.io, the default) is ``nixfly.fly.FlyTarget``; ``local`` (this machine) and
``ssh://user@host[:port]`` are ``nixfly.hosts.HostTarget``. ``open_target`` is the one place that picks
between them; the engine, the tasks and the tests only ever see a ``Target``. Neither implementation
imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from nixfly.config import Settings
from nixfly.errors import NixflyError, brief
from nixfly.remote import Endpoint, parse_endpoint

if TYPE_CHECKING:
    from nixfly.buildhost import BuildHost
    from nixfly.pipeline import Pipeline, Step

TargetKind = Literal["fly", "local", "ssh"]
TARGET_HINT = "use fly, local or ssh://user@host[:port]"


@dataclass(frozen=True)
class TargetSpec:
    kind: TargetKind
    endpoint: Endpoint | None = None

    def __str__(self) -> str:
        return f"ssh://{self.endpoint}" if self.endpoint else self.kind


def parse_target(text: str) -> TargetSpec:
    if not isinstance(text, str):
        raise NixflyError(f"unknown target {brief(text)}", TARGET_HINT)
    # Not stripped: "ssh://host\n" must not reach a connection as "ssh://host".
    text = text or "fly"
    if text == "fly":
        return TargetSpec("fly")
    if text == "local":
        return TargetSpec("local")
    if text.startswith("ssh://"):
        return TargetSpec("ssh", parse_endpoint(text))
    raise NixflyError(f"unknown target {brief(text)}", TARGET_HINT)


@dataclass(frozen=True)
class Options:
    """The deploy flags every target honours."""

    skip_build: bool = False
    skip_smoke: bool = False
    rollback: bool = True
    force: bool = False
    json_summary: bool = False


@dataclass
class Candidate:
    """What this deploy ships, filled in by the shared steps and read by the target's own steps."""

    store_path: str = ""
    # Where the closure was built (None: here); a host target copies it from there.
    built_on: Endpoint | None = None
    # The secrets bundled for this deploy (in a dry-run: what would be bundled).
    secrets: dict[str, str] | None = None


class Target(Protocol):
    """A destination: its part of the deploy pipeline, and what the tasks ask of it afterwards."""

    spec: TargetSpec

    def preflight(self, build: BuildHost, *, skip_build: bool) -> list[str]:
        """Check what this target needs before anything changes; returns what was checked."""

    def observe(self) -> None:
        """Start reading the current state (concurrently, in the background): the lock is held now."""

    def deploy_steps(self, candidate: Candidate, build: BuildHost, options: Options) -> list[Step]:
        """The steps after build, smoke and bundle: apply what changed, then verify."""

    def recover(self, pipeline: Pipeline, step: str, error: NixflyError) -> None:
        """After ``step`` failed: put the previous release back if one was made (notes on ``error``)."""

    def interrupted(self, step: str) -> str:
        """After a Ctrl-C during ``step``: what is live now and how to go back, for the user."""

    def finish(self) -> None:
        """After a healthy deploy: say where the app answers."""

    def status(self, *, as_json: bool) -> None: ...

    def logs(self, *, lines: int, timeout: float) -> str: ...

    def rollback(self, to: int) -> str: ...

    def stop(self) -> str: ...

    def close(self) -> None: ...


def open_target(
    settings: Settings, text: str, *, port: int = 0, env: Mapping[str, str] | None = None
) -> Target:
    """The target named by ``--target``: the one place that chooses between Fly and hosts."""
    spec = parse_target(text)
    if spec.kind == "fly":
        if port or env:
            raise NixflyError("--port applies to local and ssh:// targets", "drop --port for a Fly deploy")
        from nixfly.fly import FlyTarget

        return FlyTarget(settings)
    from nixfly.hosts import HostTarget

    return HostTarget(settings, spec, port=port, overrides=dict(env or {}))
