"""The deploy: one flow for every target.

    preflight → lock → build → smoke → bundle → (the target's steps: apply what changed) → verify
                                                                     └─ on failure: roll back, verify again

The steps every target shares live here, once; a ``Target`` (``nixfly.target``) contributes its own. The
target starts reading its current state as soon as the lock is held, concurrently with the build, so each
of its steps finds what it needs already read. Every step is idempotent: a second run with nothing changed
creates nothing and deploys nothing. ``--dry-run`` runs every step as a plan ("would …") and changes nothing.
A failure after a release was made rolls back (unless ``--no-rollback``); a Ctrl-C (or TERM, HUP) never
does: it stops, says what is live, and how to go back. Nor does a failure to write nixfly's own records
here (a full disk): the run fails (exit 1) saying what was not recorded, and production stays as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from nixfly import bundle, console, flytoml, git, lock, nix, runner
from nixfly.buildhost import BuildHost, open_build_host
from nixfly.config import Settings
from nixfly.errors import Interrupted, NixflyError, WriteError
from nixfly.fly import FlyTarget
from nixfly.hosts import GroupTarget, HostTarget
from nixfly.nix import Built, human_size
from nixfly.pipeline import Outcome, Pipeline, done, planned, skipped
from nixfly.runner import Runner
from nixfly.smoke import passed_before, remember
from nixfly.target import Candidate, Options, Target, parse_target


def open_target(
    settings: Settings,
    here: Runner,
    text: str,
    options: Options | None = None,
    *,
    port: int = 0,
    env: Mapping[str, str] | None = None,
) -> Target:
    """The target named by ``--target``: the one place that chooses between Fly and hosts, and the only one
    that looks at a target's kind. Flags that mean something for one kind only are refused here, before
    anything runs. ``here`` is the task's runner on this machine; ``options`` the deploy's flags."""
    options = options or Options()
    spec = parse_target(text, settings.groups)
    if options.batch != 1 and spec.kind != "group":
        raise NixflyError(
            f"--batch applies to a group of hosts, not to --target {text or 'fly'}",
            "drop --batch, or deploy to ssh://a,ssh://b or a group from nixfly.groups",
        )
    if spec.kind == "fly":
        if port or env:
            raise NixflyError("--port applies to local and ssh:// targets", "drop --port for a Fly deploy")
        return FlyTarget(settings, here, options)
    if spec.kind == "group":
        return GroupTarget(settings, here, spec, options, port=port, overrides=dict(env or {}))
    return HostTarget(settings, here, spec, options, port=port, overrides=dict(env or {}))


@contextmanager
def opened(settings: Settings, here: Runner, text: str) -> Iterator[Target]:
    """The ``--target`` of a task that asks a target something (status, logs, rollback, stop, the lock),
    closed (its SSH connection, its reads) when the task is done."""
    chosen = open_target(settings, here, text)
    try:
        yield chosen
    finally:
        chosen.close()


def deploy(
    settings: Settings,
    here: Runner,
    target: str,
    options: Options,
    *,
    on: str = "",
    port: int = 0,
    env: Mapping[str, str] | None = None,
) -> Pipeline:
    """``inv deploy``: the whole pipeline for ``target``, building here or ``on`` a build host.

    Returns the finished pipeline (its records say what each step did); raises when a step failed.
    """
    with ExitStack() as stack:
        chosen = open_target(settings, here, target, options, port=port, env=env)
        stack.callback(chosen.close)
        build = stack.enter_context(open_build_host(settings, here, on))
        return Engine(settings, here, options, chosen, build).run()


class Engine:
    def __init__(
        self, settings: Settings, here: Runner, options: Options, target: Target, build: BuildHost
    ) -> None:
        self.s = settings
        self.runner = here
        self.options = options
        self.target = target
        self.build_host = build
        self.candidate = Candidate()
        self.built: Built | None = None

    def run(self) -> Pipeline:
        s = self.s
        pipeline = Pipeline(
            f"deploy {s.mode.name} → {s.app}{self.target.label()}" + (" (dry-run)" if self.s.dry_run else ""),
            json_summary=self.options.json_summary,
            resume_hint=f"run `inv {self.target.deploy_command()}` again: finished steps are skipped",
        )
        with ExitStack() as stack:
            steps = [
                ("preflight", self.preflight),
                (
                    "lock",
                    lambda: lock.step(
                        stack, self.runner, self.s, f"deploy --mode {self.s.mode.name}", self.target.observe
                    ),
                ),
                ("build", self.build),
                ("smoke", self.smoke),
                ("bundle", self.bundle),
                *self.target.deploy_steps(self.candidate, self.build_host),
            ]
            steps = [(name, self._bounded(action) if name == "verify" else action) for name, action in steps]
            try:
                pipeline.run(steps, on_failure=self._bounded_recovery)
            except Interrupted as exc:
                step = next((r.step for r in pipeline.records if r.status == "interrupted"), "")
                note = self.target.interrupted(step)
                if note:
                    exc.add_note(note)
                raise
        if not self.s.dry_run:
            self.target.finish()
        return pipeline

    def _bounded(self, verify: Callable[[], Outcome]) -> Callable[[], Outcome]:
        """Verify ends within ``health.timeout`` (and one probe's ``http_timeout``) as a whole: its polling
        stops there, and a command still running then (a hung ``checks list``) is stopped there too."""
        health = self.s.health

        def bounded() -> Outcome:
            with runner.deadline(health.timeout + health.http_timeout, "nixfly.health.timeout"):
                return verify()

        return bounded

    def _bounded_recovery(self, pipeline: Pipeline, step: str, error: NixflyError) -> None:
        """The target's recovery (a rollback: redeploy, then verify) within one redeploy's limit and one
        verify's, so that a hung read cannot hold a failed deploy open either; none at all when only a local
        record of a verified release could not be written (``WriteError``)."""
        s = self.s
        verified = step == "verify" or any(
            r.step == "verify" and r.status == "done" for r in pipeline.records
        )
        if isinstance(error, WriteError) and verified:
            # The release passed its health checks; only writing nixfly's record of it on this machine's
            # disk failed. Production is left as it is, the user is told what was not written, and the run
            # still fails. (Before verify, a write failure may leave a release half-made: recovered as usual.)
            error.add_note(
                f"nothing was rolled back: only nixfly's own record ({Path(error.path).name}) was not "
                "written; what runs was not changed by that (a later deploy writes it again)"
            )
            return
        seconds = s.timeouts.get("flyctl_deploy", 0) + s.health.timeout + s.health.http_timeout
        with runner.deadline(seconds, "nixfly.timeouts.flyctl_deploy + nixfly.health.timeout"):
            self.target.recover(pipeline, step, error)

    # --- the steps every target shares ----------------------------------------------------------------------
    def preflight(self) -> Outcome:
        s = self.s
        git.refuse_tracked_secrets(self.runner, s.root)  # before Nix copies the checkout, or Fly uploads it
        nix.options()  # an unparseable NIXFLY_NIX_OPTIONS is refused now, not at the first nix call
        errors = [
            m
            for level, m in flytoml.problems(
                flytoml.load(s.fly_config), expected_app=s.app, volume=s.mode.volume
            )
            if level == "error"
        ]
        if errors:
            raise NixflyError(
                f"{s.fly_config.name}: {'; '.join(errors)}", "fix the file; `inv doctor` lists all checks"
            )
        checked = [f"{s.fly_config.name} ok"]
        if self.options.skip_build:
            if self.build_host.endpoint is not None:
                raise NixflyError("--skip-build cannot be combined with --on", "drop one of them")
            if not s.out_link.exists():
                raise NixflyError(f"--skip-build but {s.out_link.name} does not exist", "drop --skip-build")
        else:
            self.build_host.require_nix()
            checked.append(f"nix{self.build_host.where or ' here'}")
        checked += self.target.preflight(self.build_host, skip_build=self.options.skip_build)
        return done("; ".join(checked))

    def build(self) -> Outcome:
        s, c = self.s, self.candidate
        if self.options.skip_build:
            c.store_path = str(s.out_link.resolve())
            self.built = Built(s.mode.flake_attr, c.store_path, s.out_link, 0, 0, cached=True)
            return skipped(f"--skip-build: using {c.store_path}")
        where = self.build_host.where
        c.source = self.build_host.pinned()
        built = self.build_host.build(s.mode.flake_attr, s.mode.out_link, flake=c.source)
        c.built_on = self.build_host.endpoint
        if self.s.dry_run:
            return planned(f"would build .#{s.mode.flake_attr}{where}")
        self.built = built
        c.store_path = built.store_path
        how = "up to date" if built.cached else "built"
        return done(f"{how}{where}: {built.store_path} (closure {human_size(built.closure_size)})")

    def smoke(self) -> Outcome:
        s, c = self.s, self.candidate
        where = self.build_host.where
        if self.options.skip_smoke:
            c.smoke = "skipped (--skip-smoke)"
            return skipped("--skip-smoke")
        if self.s.dry_run:
            return planned(f"would run tests/smoke against {s.out_link.name}{where}")
        if passed_before(s.state_dir, c.store_path):
            c.smoke = "passed before"
            return skipped("passed before for this exact closure")
        assert self.built is not None
        self.build_host.smoke(self.built)
        c.smoke = "passed"
        try:
            remember(s.state_dir, c.store_path)
        except WriteError as exc:
            # Only a later deploy's shortcut is lost: it runs the same tests again.
            console.warn(f"not recorded that this closure passed: {exc.message}")
            return done(f"smoke tests passed{where} (not recorded: {exc.message})")
        return done(f"smoke tests passed{where}")

    def bundle(self) -> Outcome:
        s, c = self.s, self.candidate
        result = bundle.refresh(s.root, s.dotenv, s.env_file, self.runner, dry_run=self.s.dry_run)
        for warning in result.warnings:
            console.warn(warning)
        c.secrets = dict(result.values)
        if not result.changed:
            return skipped(f"{s.env_file.name} holds what its sources hold")
        keys = ", ".join(result.values) or "none"
        if self.s.dry_run:
            return planned(f"would write {s.env_file.name} ({result.reason}): {keys}")
        return done(f"wrote {s.env_file.name} ({result.reason}): {keys}")
