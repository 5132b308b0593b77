"""The deploy pipeline: plan → (dry-run stops here) → apply → verify, with rollback when verify fails.

preflight → lock → build → smoke → bundle → app → volume → secrets → release (record what is live) →
deploy → verify. Every step is idempotent: a second run with nothing changed creates nothing, stages no
secret and does not redeploy. Fly does not roll back a failed release by itself, so nixfly does: the
previous release's image is redeployed with ``--strategy immediate`` and verified again.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from nixfly import buildhost, bundle, console, envfiles, flytoml, git, health, image, lock, smoke
from nixfly.config import Settings
from nixfly.errors import NixflyError
from nixfly.files import read_record, write_atomic
from nixfly.flyctl import Flyctl, Release, find_executable
from nixfly.nix import Nix, human_size
from nixfly.pipeline import Outcome, Pipeline, done, planned, skipped
from nixfly.remote import RemoteRunner
from nixfly.runner import Runner
from nixfly.secrets import Fingerprints, encode_all
from nixfly.targets import closure

HEALTH_FAILURE = "waiting for health checks"


@dataclass(frozen=True)
class Options:
    skip_build: bool = False
    skip_smoke: bool = False
    rollback: bool = True
    force: bool = False
    stage_secrets: bool = True
    json_summary: bool = False


@dataclass
class Deployment:
    settings: Settings
    runner: Runner
    options: Options = field(default_factory=Options)
    store_path: str = ""
    image_ref: str = ""
    previous: Release | None = None
    deployed_version: int = 0
    # What the bundle step gathered, for a dry-run plan when .env.fly is not written yet.
    pending_secrets: dict[str, str] = field(default_factory=dict)
    _app_exists: bool | None = None
    # --on user@host: build and smoke there (results stay on the host); None builds here.
    builder: RemoteRunner | None = None
    remote_result: PurePosixPath = field(default_factory=PurePosixPath)

    def __post_init__(self) -> None:
        self.fly = Flyctl(self.runner, self.settings.flyctl)
        self.nix = Nix(self.runner, self.settings.root)

    @property
    def s(self) -> Settings:
        return self.settings

    @property
    def dry(self) -> bool:
        return self.settings.dry_run

    # --- the pipeline ------------------------------------------------------------------------------------
    def run(self) -> None:
        s = self.s
        pipeline = Pipeline(
            f"deploy {s.mode.name} → {s.app}" + (" (dry-run)" if self.dry else ""),
            json_summary=self.options.json_summary,
            resume_hint=f"run `inv deploy --mode {s.mode.name}` again: finished steps are skipped",
        )
        with ExitStack() as stack:
            steps = [
                ("preflight", self.preflight),
                ("lock", lambda: self.take_lock(stack)),
                ("build", self.build),
                ("smoke", self.smoke),
                ("bundle", self.bundle),
                ("app", self.ensure_app),
                ("volume", self.ensure_volume),
                ("secrets", self.stage_secrets),
                ("image", self.push_image),
                ("release", self.record_release),
                ("deploy", self.deploy),
                ("verify", self.verify),
            ]
            pipeline.run(steps, on_failure=lambda step, exc: self.recover(pipeline, step, exc))

    def preflight(self) -> Outcome:
        s = self.s
        cfg = flytoml.load(s.fly_config)
        errors = [
            m
            for level, m in flytoml.problems(cfg, expected_app=s.app, volume=s.mode.volume)
            if level == "error"
        ]
        if errors:
            raise NixflyError(
                f"{s.fly_config.name}: {'; '.join(errors)}", "fix the file; `inv doctor` lists all checks"
            )
        find_executable(s.flyctl)
        # Nix runs here unless --on builds elsewhere; the image path copies the image here to push it.
        builds_here = self.builder is None and not self.options.skip_build
        if (builds_here or (self.builder is not None and s.builder == "image")) and not self.runner.which(
            "nix"
        ):
            raise NixflyError(
                "nix not found on PATH", "install Nix with flakes enabled, or pass --skip-build"
            )
        who = self.fly.whoami()
        return done(f"flyctl logged in as {who}; {s.fly_config.name} ok")

    def take_lock(self, stack: ExitStack) -> Outcome:
        if self.dry:
            return planned(f"would lock {self.s.app}")
        revision = git.revision(self.runner, self.s.root)
        stack.enter_context(
            lock.held(self.s.state_dir, self.s.app, revision, f"deploy --mode {self.s.mode.name}")
        )
        return done(f"held by pid {os.getpid()}")

    def build(self) -> Outcome:
        s = self.s
        if self.options.skip_build:
            if self.builder is not None:
                raise NixflyError("--skip-build cannot be combined with --on", "drop one of them")
            if not s.out_link.exists():
                raise NixflyError(f"--skip-build but {s.out_link.name} does not exist", "drop --skip-build")
            self.store_path = str(s.out_link.resolve())
            return skipped(f"--skip-build: using {self.store_path}")
        where = ""
        if self.builder is not None:
            built = buildhost.build_on(s, self.builder)
            self.remote_result = PurePosixPath(str(built.out_link))
            where = f" on {self.builder.endpoint}"
        else:
            built = self.nix.build(s.mode.flake_attr, s.out_link)
        if self.dry:
            return planned(f"would build .#{s.mode.flake_attr}{where}")
        self.store_path = built.store_path
        how = "up to date" if built.cached else "built"
        return done(f"{how}{where}: {built.store_path} (closure {human_size(built.closure_size)})")

    def smoke(self) -> Outcome:
        s = self.s
        where = f" on {self.builder.endpoint}" if self.builder is not None else ""
        if self.options.skip_smoke:
            return skipped("--skip-smoke")
        if self.dry:
            return planned(f"would run tests/smoke against {s.out_link.name}{where}")
        if smoke.passed_before(s.state_dir, self.store_path):
            return skipped("passed before for this exact closure")
        if self.builder is not None:
            buildhost.smoke(s, self.builder, self.remote_result.parent, str(self.remote_result))
        else:
            smoke.run(self.runner, s.root, s.out_link, s.mode.smoke)
        smoke.remember(s.state_dir, self.store_path)
        return done(f"smoke tests passed{where}")

    def bundle(self) -> Outcome:
        s = self.s
        result = bundle.refresh(s.root, s.dotenv, s.env_file, self.runner, dry_run=self.dry)
        for warning in result.warnings:
            console.warn(warning)
        if not result.changed:
            return skipped(f"{s.env_file.name} holds what its sources hold")
        keys = ", ".join(result.values) or "none"
        if self.dry:
            self.pending_secrets = result.values
            return planned(f"would write {s.env_file.name} ({result.reason}): {keys}")
        return done(f"wrote {s.env_file.name} ({result.reason}): {keys}")

    def app_exists(self) -> bool:
        """Asked once per run; creating the app (for real) makes it true."""
        if self._app_exists is None:
            self._app_exists = self.fly.app_exists(self.s.app)
        return self._app_exists

    def ensure_app(self) -> Outcome:
        s = self.s
        if self.app_exists():
            return skipped(f"{s.app} exists")
        self.fly.create_app(s.app, s.org)
        self._app_exists = not self.dry
        return planned(f"would create app {s.app}") if self.dry else done(f"created app {s.app}")

    def ensure_volume(self) -> Outcome:
        s = self.s
        name = s.mode.volume
        if not name:
            return skipped(f"mode {s.mode.name} has no volume")
        if self.app_exists():
            existing = [v for v in self.fly.volumes(s.app) if v.name == name]
            # flyctl creates a second same-named volume when asked twice: list first, create only if none.
            if existing:
                return skipped(f"{name} exists ({existing[0].id}, {existing[0].region})")
        self.fly.create_volume(s.app, name, s.region, s.mode.volume_size_gb)
        what = f"volume {name} ({s.mode.volume_size_gb} GB, {s.region})"
        return planned(f"would create {what}") if self.dry else done(f"created {what}")

    def stage_secrets(self) -> Outcome:
        s = self.s
        if self.dry and self.pending_secrets:
            values = self.pending_secrets
        elif s.env_file.exists():
            values = envfiles.read(s.env_file)
        else:
            raise NixflyError(f"{s.env_file.name} not found", "run `inv bundle`")
        missing = [k for k in s.mode.required_secrets if not values.get(k)]
        if missing:
            raise NixflyError(
                f"{s.env_file.name} lacks required secrets: {', '.join(missing)}",
                "set them in .env or the environment, then `inv bundle`",
            )
        encode_all(values)  # refuses any value flyctl cannot carry before anything is sent
        if not self.app_exists() and not self.dry:
            raise NixflyError(f"app {s.app} does not exist yet", "run `inv apps.create` or `inv deploy`")
        remote = set()
        if self.app_exists():
            remote = {secret.name for secret in self.fly.secrets(s.app)}
        prints = Fingerprints(s.state_dir, s.app)
        changed = prints.changed(values, remote)
        if not changed:
            return skipped(f"{len(values)} secrets unchanged")
        self.fly.import_secrets(s.app, encode_all(changed), stage=self.options.stage_secrets)
        names = ", ".join(changed)
        if self.dry:
            return planned(f"would stage {names}")
        prints.record(changed)
        return done(f"{'staged' if self.options.stage_secrets else 'set'} {names}")

    def push_image(self) -> Outcome:
        """builder=image: the mode's OCI image from Nix, pushed with skopeo unless the registry has it."""
        s = self.s
        if s.builder != "image":
            return skipped("builder is nixpacks (Fly's remote builder makes the image)")
        if self.builder is not None:
            # Built where the closure is; pushed from here, so the Fly token never leaves this machine.
            built = buildhost.build_on(s, self.builder, s.mode.image_attr, f"{s.mode.out_link}-image")
            closure.copy(self.runner, built.store_path, source=self.builder.endpoint)
        else:
            built = image.build(self.nix, s.mode.image_attr, s.root / f"{s.mode.out_link}-image")
        if self.dry:
            return planned(f"would build .#{s.mode.image_attr} and push it to {s.registry}/{s.app}")
        ref = image.reference(s.registry, s.app, built.store_path)
        pushed = image.push(self.runner, built.store_path, ref, self.fly.token())
        self.image_ref = ref
        return done(f"{'pushed' if pushed.uploaded else 'already in registry'}: {ref}")

    def record_release(self) -> Outcome:
        s = self.s
        if not self.app_exists():
            return planned("no release yet (new app)")
        live = [r for r in self.fly.releases(s.app) if r.status in ("complete", "succeeded")]
        self.previous = live[0] if live else None
        if self.previous is None:
            return done("first deploy: nothing to roll back to")
        return done(f"live: v{self.previous.version} {self.previous.image_ref}")

    def deploy(self) -> Outcome:
        s = self.s
        inputs = self._inputs_digest()
        record = read_record(self._record_path())
        if (
            not self.options.force
            and self.previous is not None
            and record.get("version") == self.previous.version
            and record.get("inputs") == inputs
        ):
            return skipped(f"v{self.previous.version} is live and nothing changed (--force redeploys)")
        info = self.fly.deploy(
            s.app,
            s.fly_config,
            image=self.image_ref,
            nixpacks=not self.image_ref,
            strategy=s.strategy,
            cwd=s.root,
        )
        if self.dry:
            return planned(f"would deploy {s.app} with {s.fly_config.name}")
        self.deployed_version = int(info.get("version") or 0)
        return done(f"released v{self.deployed_version or '?'} {info.get('image_ref', '')}".strip())

    def verify(self) -> Outcome:
        s = self.s
        if self.dry:
            return planned(f"would wait for machines, checks and {s.health_url}")
        detail = health.wait_healthy(self.fly, s.app, s.health_url, s.health)
        releases = self.fly.releases(s.app)
        if releases:
            write_atomic(
                self._record_path(),
                json.dumps({"version": releases[0].version, "inputs": self._inputs_digest()}) + "\n",
                mode=0o644,
            )
        return done(detail)

    # --- failure handling -------------------------------------------------------------------------------
    def recover(self, pipeline: Pipeline, step: str, exc: NixflyError) -> None:
        """After a failed deploy or verify, put the previous release back (Fly will not)."""
        if step not in ("deploy", "verify") or self.dry:
            return
        if step == "deploy" and HEALTH_FAILURE not in exc.message and not self._new_release_made():
            return  # nothing was released: nothing to undo
        exc.hint = f"see `inv logs --mode {self.s.mode.name}`"
        if not self.options.rollback:
            exc.message += "; automatic rollback is off (--no-rollback)"
            exc.hint = f"`inv rollback --mode {self.s.mode.name}` puts the previous release back"
            return
        if self.previous is None:
            exc.message += f"; this was the first deploy of {self.s.app}: nothing to roll back to"
            return
        target = self.previous
        try:
            pipeline.run_extra("rollback", lambda: self.rollback_to(target))
        except NixflyError as failed:
            exc.message += f"; rollback to v{target.version} FAILED too: {failed.message}"
            exc.hint = "the app may be down: `inv status`, `inv logs`"
            return
        exc.message += f"; rolled back to v{target.version} ({target.image_ref})"

    def rollback_to(self, release: Release) -> Outcome:
        s = self.s
        self.fly.deploy(s.app, s.fly_config, image=release.image_ref, strategy="immediate", cwd=s.root)
        detail = health.wait_healthy(self.fly, s.app, s.health_url, s.health)
        return done(f"v{release.version} live again: {detail}")

    def _new_release_made(self) -> bool:
        try:
            releases = self.fly.releases(self.s.app)
        except NixflyError:
            return True  # cannot tell: assume the worst and roll back
        newest = releases[0].version if releases else 0
        return newest > (self.previous.version if self.previous else 0)

    def _record_path(self) -> Path:
        return self.s.state_dir / f"deployed-{self.s.app}.json"

    def _inputs_digest(self) -> str:
        """What a deploy is made of: the closure (or image), the fly config, and the secrets' fingerprints."""
        s = self.s
        digest = hashlib.sha256()
        digest.update(f"{s.builder}\0{self.store_path}\0{self.image_ref}\0{s.strategy}\0".encode())
        digest.update(s.fly_config.read_bytes())
        prints = Fingerprints(s.state_dir, s.app)
        digest.update(json.dumps(prints.load(), sort_keys=True).encode())
        return digest.hexdigest()
