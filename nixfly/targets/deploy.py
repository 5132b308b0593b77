"""The deploy pipeline for ``--target local`` and ``--target ssh://…``, optionally building ``--on`` a host.

preflight → lock → build → smoke → bundle → copy → activate → verify, with rollback when activate or verify
fails. Build, smoke, bundle and the lock are the Fly pipeline's own steps (``Deployment``); with ``--on``
build and smoke run on the build host instead, and copy moves the closure from wherever it was built to
wherever it runs (nothing to move when that is the same machine).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field

from nixfly import console, flytoml
from nixfly.buildhost import remote_runner, require_nix
from nixfly.config import Settings
from nixfly.deploy import Deployment, Options
from nixfly.errors import NixflyError
from nixfly.pipeline import Outcome, Pipeline, done, planned, skipped
from nixfly.remote import Endpoint, RemoteRunner
from nixfly.runner import Runner
from nixfly.targets import Target, closure, open_host, parse_target
from nixfly.targets.activate import Activation
from nixfly.targets.hosts import Host


@dataclass
class TargetDeployment:
    settings: Settings
    target: Target
    options: Options
    on: str = ""
    port: int = 0
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.settings
        if self.target.kind == "fly":
            raise NixflyError("--target fly deploys with `inv deploy`'s Fly pipeline", "use local or ssh://…")
        self.runner = Runner(dry_run=s.dry_run, cwd=s.root)
        self.builder: RemoteRunner | None = remote_runner(s, self.on) if self.on else None
        self.deployment = Deployment(s, self.runner, self.options, builder=self.builder)
        self.host: Host = open_host(s, self.target, self.runner)
        self.activation: Activation | None = None
        self.store_path = ""

    @property
    def built_at(self) -> Endpoint | None:
        return self.builder.endpoint if self.builder else None

    def run(self) -> None:
        s = self.settings
        pipeline = Pipeline(
            f"deploy {s.mode.name} → {s.app} on {self.target}" + (" (dry-run)" if s.dry_run else ""),
            json_summary=self.options.json_summary,
            resume_hint=f"run `inv deploy --target {self.target}` again: finished steps are skipped",
        )
        try:
            with ExitStack() as stack:
                steps = [
                    ("preflight", self.preflight),
                    ("lock", lambda: self.deployment.take_lock(stack)),
                    ("build", self.build),
                    ("smoke", self.smoke),
                    ("bundle", self.deployment.bundle),
                    ("copy", self.copy),
                    ("activate", self.activate),
                    ("verify", self.verify),
                ]
                pipeline.run(steps, on_failure=lambda step, exc: self.recover(pipeline, step, exc))
            live = self.activation.live_url() if self.activation and not s.dry_run else ""
            if live:
                console.ok(
                    f"{s.app} answers at {live}; `inv stop --target {self.target}` ends it"
                )
        finally:
            self.host.close()
            if self.builder is not None:
                self.builder.close()

    def preflight(self) -> Outcome:
        s = self.settings
        cfg = flytoml.load(s.fly_config)
        found = flytoml.problems(cfg, expected_app=s.app, volume=s.mode.volume)
        errors = [message for level, message in found if level == "error"]
        if errors:
            raise NixflyError(
                f"{s.fly_config.name}: {'; '.join(errors)}", "fix the file; `inv doctor` lists all checks"
            )
        if not s.mode.start:
            raise NixflyError(f"mode {s.mode.name} has no `start` command", "set nixfly.modes.<mode>.start")
        tools = []
        builds_here = self.builder is None and not self.options.skip_build
        copies_here = self.target.kind == "ssh" and self.built_at != self.target.endpoint
        if builds_here or copies_here or self.target.kind == "local":
            if not self.runner.which("nix"):
                raise NixflyError("nix not found on PATH", "install Nix with flakes enabled")
            tools.append("nix here")
        if self.builder is not None:
            require_nix(self.builder)
            tools.append(f"nix on {self.builder.endpoint}")
        for tool in ("nix-env", "setsid"):
            if not self.host.runner.which(tool):
                where = "PATH" if self.target.kind == "local" else f"{self.host.name}'s PATH"
                raise NixflyError(f"{tool} not found on {where}", "it runs the releases: install it there")
        tools.append(f"nix-env on {self.host.name}")
        self.activation = Activation(s, self.host, port=self.port, overrides=dict(self.env))
        return done(f"{'; '.join(tools)}; {s.fly_config.name} ok")

    def build(self) -> Outcome:
        outcome = self.deployment.build()
        self.store_path = self.deployment.store_path
        return outcome

    def smoke(self) -> Outcome:
        return self.deployment.smoke()

    def copy(self) -> Outcome:
        source, dest = self.built_at, self.target.endpoint
        if source == dest:
            return skipped(f"built on {self.host.name}: nothing to copy")
        if self.settings.dry_run and not self.store_path:
            return planned(f"would copy the closure from {source or 'here'} to {dest or 'here'}")
        closure.copy(self.runner, self.store_path, source=source, dest=dest)
        if self.settings.dry_run:
            return planned(f"would copy {self.store_path} to {dest or 'here'}")
        return done(f"copied {self.store_path} from {source or 'here'} to {dest or 'here'}")

    def activate(self) -> Outcome:
        assert self.activation is not None
        if self.settings.dry_run and not self.store_path:
            console.say(f"{self.host.label}[dry-run] would make the build a new generation and restart it")
            return planned(f"would activate the new build on {self.host.name}")
        return self.activation.activate(self.store_path, force=self.options.force)

    def verify(self) -> Outcome:
        assert self.activation is not None
        return self.activation.verify()

    def recover(self, pipeline: Pipeline, step: str, exc: NixflyError) -> None:
        if step not in ("activate", "verify") or self.activation is None:
            return
        activation = self.activation
        pipeline.run_extra("rollback", lambda: activation.restore(exc, auto=self.options.rollback))


def deploy_pipeline(
    settings: Settings,
    target: str,
    options: Options,
    *,
    on: str = "",
    port: int = 0,
    env: Mapping[str, str] | None = None,
) -> None:
    """``inv deploy --target local|ssh://… [--on user@host]``: the whole pipeline, summary included."""
    TargetDeployment(settings, parse_target(target), options, on=on, port=port, env=dict(env or {})).run()
