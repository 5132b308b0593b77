"""Fly.io as a deploy target: app → volume → secrets → image → release → deploy → verify (→ rollback).

The reads start when the lock is taken (``Observation``), the decisions are ``fly.plan``'s, health is
``fly.verify``'s; this module applies them in order through flyctl. Fly does not roll back a failed release
by itself, so nixfly does: the previous release's image is redeployed with ``--strategy immediate`` to every
machine and verified again, region by region.

A mode that declares ``regions`` gets two more steps: ``regions`` first (the plan, refused before anything
changes when it would leave volumes without a machine) and ``scale`` last (``fly scale count`` per region,
then every machine verified). Scaling comes after the deploy because ``fly scale count`` clones a deployed
machine (a new app has none), and after its verification so a bad release is rolled back on the machines
it reached before any more are made of it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path

from nixfly import (
    bundle,
    closurediff,
    console,
    envfiles,
    flytoml,
    git,
    image,
    lock,
    manifests,
    plandiff,
    receipt,
    sbom,
)
from nixfly.buildhost import FLY_SYSTEM, BuildHost
from nixfly.config import Settings
from nixfly.console import print_json
from nixfly.errors import NixflyError
from nixfly.files import read_record, write_atomic
from nixfly.fly import digest, plan, receipts, restore
from nixfly.fly.observe import Observation
from nixfly.fly.plan import ScalePlan, after_first_deploy
from nixfly.fly.scale import Scaler, plan_table
from nixfly.fly.verify import judge, min_machines_running, region_table, wait_for
from nixfly.flyctl import TOKEN_ENV, Deployed, Flyctl, FlyRelease, Machine, find_executable
from nixfly.flysecrets import Fingerprints, encode_all
from nixfly.nix import Nix
from nixfly.pipeline import Outcome, Pipeline, Step, done, planned, skipped
from nixfly.probe import Expect, http_ok
from nixfly.runner import REDACT, Runner
from nixfly.sbom import Manifest
from nixfly.target import Candidate, Options, TargetSpec


class FlyTarget:
    spec = TargetSpec("fly")
    # flyctl's --ha: a first deploy's second machine (or standby) per group; previews run one machine.
    ha = True

    def __init__(self, settings: Settings, runner: Runner, options: Options | None = None) -> None:
        self.s = settings
        self.runner = runner
        self.options = options or Options()
        self.fly = Flyctl(self.runner, settings.flyctl)
        self.observed: Observation | None = None
        self.created = False  # this run created the app (for real)
        self.previous: FlyRelease | None = None
        self.image_ref = ""
        # The digest the push produced (builder=image): what every machine must run after verify.
        self.image_digest = ""
        self.image_store_path = ""
        # For the receipt: when the lock was taken, and the machines the release was verified on.
        self.started_at = ""
        self.verified: tuple[Machine, ...] = ()
        self.deployed: Deployed | None = None
        self.deploy_made = False
        # Declared regions only (nixfly.modes.<mode>.regions): made in preflight, once the fly toml is known.
        self.scaler: Scaler | None = None
        self.scale_plan: ScalePlan | None = None

    def _seen(self) -> Observation:
        if self.observed is None:
            self.observe()
        assert self.observed is not None
        return self.observed

    def _exists(self) -> bool:
        return self.created or self._seen().exists()

    # --- Target: the deploy ---------------------------------------------------------------------------------
    def preflight(self, build: BuildHost, *, skip_build: bool) -> list[str]:
        s = self.s
        # Whether flyctl is logged in is asked with the other reads once the lock is held (``observe``):
        # one round trip fewer, and still before anything is built or changed.
        checked = [f"{find_executable(s.flyctl)} found"]
        if s.builder == "image":
            system = build.system()
            if system != FLY_SYSTEM:
                raise NixflyError(
                    f"the image would be built for {system}{build.where or ' (this machine)'}, "
                    f"but Fly Machines run {FLY_SYSTEM}",
                    "build on Linux: --on user@x86_64-linux-host, or let Fly build it: --builder nixpacks",
                )
            if build.endpoint is not None and not self.runner.which("nix"):
                raise NixflyError(
                    "nix not found here: the image is copied here to be pushed (the Fly token stays here)",
                    "install Nix here, or use --builder nixpacks",
                )
            checked.append(f"image for {system}")
        else:
            nixpacks = s.mode.nixpacks_config
            if not nixpacks or not (s.root / nixpacks).is_file():
                raise NixflyError(
                    f"mode {s.mode.name} has no nixpacks config ({nixpacks or 'nixpacks_config unset'})",
                    "use --builder image, or set nixfly.modes.<mode>.nixpacks_config to its nixpacks toml",
                )
            checked.append(f"nixpacks with {nixpacks}")
        if s.mode.regions:
            self.scaler = Scaler(s, self.fly, s.mode.regions, exhaustive=True)
            self.scaler.check_regions(self.fly.regions())
            checked.append(f"regions {self.scaler.counts}")
        return checked

    def observe(self) -> None:
        """Start every read of Fly's state at once, and wait for the one that says who is logged in: a
        deploy that cannot read Fly stops here, before the build."""
        if self.observed is None:
            self.started_at = receipt.now()
            self.observed = Observation(self.fly, self.s.app, self._repository())
            self.observed.account()

    def deploy_steps(self, candidate: Candidate, build: BuildHost) -> list[Step]:
        regions = bool(self.s.mode.regions)
        return [
            ("diff", lambda: self.plan_diff(candidate)),
            *([("regions", self.plan_regions)] if regions else []),
            ("app", lambda: self.ensure_app(candidate, build)),
            ("volume", self.ensure_volume),
            ("secrets", lambda: self.stage_secrets(candidate.secrets)),
            ("image", lambda: self.push_image(build, candidate)),
            ("release", self.record_release),
            ("deploy", lambda: self.deploy(candidate)),
            ("verify", lambda: self.verify(candidate)),
            *([("scale", self.converge)] if regions else []),
            ("receipt", lambda: self.write_receipt(candidate)),
        ]

    def plan_diff(self, candidate: Candidate) -> Outcome:
        """What this deploy changes against the live release: its closure (for nixpacks, what the checkout
        pins: ``sbom.nixpacks_manifest``) against the live one's SBOM, read from beside the live image
        (``Observation.live_release``)."""
        s = self.s
        new = candidate.store_path or (os.readlink(s.out_link) if s.out_link.is_symlink() else "")
        if not new and s.builder == "image":
            return skipped(f"nothing built yet to compare: `inv build --mode {s.mode.name}` first")
        if not self._exists():
            return skipped(f"{s.app} does not exist yet: everything is new")
        try:
            live = self._seen().live_release()
        except NixflyError as exc:
            return skipped(f"the live release's manifest cannot be read: {exc.message}")
        if live is None:
            return skipped("the live release has no receipt to compare with (not deployed by nixfly)")
        kept, manifest = live
        here = self._nixpacks_manifest() if s.builder == "nixpacks" else sbom.manifest_of(self.runner, new)
        changes = closurediff.diff(manifest, here)
        return plandiff.outcome(changes, f"v{kept.release}", dry=self.s.dry_run)

    def _nixpacks_manifest(self) -> sbom.Manifest:
        s = self.s
        # flyctl uploads the work tree as it is: uncommitted changes ship too, and the revision says so.
        dirty = "+dirty" if git.is_dirty(self.runner, s.root) else ""
        return sbom.nixpacks_manifest(
            s.root,
            s.app,
            s.mode.nixpacks_config,
            receipts.nixpacks_version(self.runner),
            git.revision(self.runner, s.root) + dirty,
        )

    def _repository(self) -> str:
        """The app's repository in nixfly's registry: a nixpacks release's receipt is kept there, beside
        the image flyctl pushed to it."""
        return f"{self.s.registry}/{self.s.app}"

    def plan_regions(self) -> Outcome:
        """What converging to the declared regions will take; refused now, before anything changes, when it
        would leave volumes without a machine."""
        s, scaler = self.s, self._scaler()
        status = self._seen().status() if self._exists() else None
        if status is not None and status.machines:
            self.scale_plan = scaler.plan(status.machines, self._seen().volumes())
            if not self.scale_plan.needed:
                return skipped(self.scale_plan.describe())
            table = plan_table(f"{s.app}: machines per region, now → wanted", self.scale_plan)
            return (planned if self.s.dry_run else done)(self.scale_plan.describe(), table)
        # A new app: the scale step plans from what the first deploy made; here, from what it will make.
        first = scaler.plan(*after_first_deploy(scaler.groups, scaler.mounts, s.region))
        table = plan_table(f"{s.app}: machines per region after the first deploy → wanted", first)
        what = f"after the first deploy ({first.now()}): {first.describe()}"
        return (planned if self.s.dry_run else done)(what, table)

    def converge(self) -> Outcome:
        """``fly scale count`` in each region that differs, then every machine verified (the new ones too)."""
        s, scaler = self.s, self._scaler()
        if self.s.dry_run:
            if self.scale_plan is None:
                return planned(f"would converge to {scaler.counts} from what the first deploy made")
            if not self.scale_plan.needed:
                return skipped(self.scale_plan.describe())
            status = self._seen().status()
            scaler.apply(self.scale_plan, status.machines if status else (), self._seen().volumes())
            return planned(f"would converge to {scaler.counts}: {self.scale_plan.describe()}")
        if self.scale_plan is not None and not (self.deploy_made or self.created):
            status, volumes = self._seen().status(), self._seen().volumes()
            chosen = self.scale_plan
        else:  # the deploy made or changed machines: plan again from what Fly has now
            status, volumes = self.fly.app_status(s.app), self.fly.volumes(s.app)
            chosen = scaler.plan(status.machines if status else (), volumes)
        if not chosen.needed:
            return skipped(chosen.describe())
        applied = scaler.apply(chosen, status.machines if status else (), volumes)
        assert applied is not None  # not a dry-run
        version, image_ref = self._live()
        healthy = scaler.verify(chosen, version=version, image_ref=image_ref)
        return done(
            f"{chosen.describe()}: {applied.describe()}; {healthy.detail}",
            healthy.table(self._title(version)),
        )

    def ensure_app(self, candidate: Candidate | None = None, build: BuildHost | None = None) -> Outcome:
        """The app, made when missing: the first step that changes Fly, so every input this deploy will
        send is checked first (``check_inputs``)."""
        s = self.s
        if candidate is not None and build is not None:
            self.check_inputs(candidate, build)
        if self._exists():
            return skipped(f"{s.app} exists")
        self.fly.create_app(s.app, s.org)
        self.created = not self.s.dry_run
        return planned(f"would create app {s.app}") if self.s.dry_run else done(f"created app {s.app}")

    def ensure_volume(self) -> Outcome:
        s = self.s
        name = s.mode.volume
        if not name:
            return skipped(f"mode {s.mode.name} has no volume")
        found = plan.existing_volume(self._seen().volumes(), name) if not self.created else None
        if found is not None:
            return skipped(f"{name} exists ({found.id}, {found.region})")
        self.fly.create_volume(s.app, name, s.region, s.mode.volume_size_gb)
        what = f"volume {name} ({s.mode.volume_size_gb} GB, {s.region})"
        return planned(f"would create {what}") if self.s.dry_run else done(f"created {what}")

    def check_inputs(self, candidate: Candidate, build: BuildHost) -> None:
        """Everything this deploy will send to Fly that can be refused now, before anything changes: what
        ships is the closure the smoke tests ran (``_require_tested_source``), the secrets (required ones
        present and non-empty, each one flyctl can carry) and, when a volume will be made, its region (one
        Fly offers: flyctl v0.3.196+ drops deprecated regions from ``platform regions`` and refuses them
        in ``volumes create`` with ``region X not found``, internal/prompt/prompt.go
        ``PlatformRegions``/``Region``)."""
        self._require_tested_source(build, candidate)
        if candidate.secrets is not None:
            self._check_secrets(candidate.secrets)
        s = self.s
        volume = s.mode.volume
        if volume and (not self._exists() or plan.existing_volume(self._seen().volumes(), volume) is None):
            offered = self.fly.regions()
            if s.region not in offered:
                raise NixflyError(
                    f"region {s.region} is not one Fly offers (deprecated or unknown): the volume "
                    f"{volume} cannot be made there",
                    "pick another with --region or primary_region in the fly toml; "
                    "`flyctl platform regions` lists them",
                )

    def _check_secrets(self, values: dict[str, str]) -> None:
        s = self.s
        missing = [k for k in s.mode.required_secrets if not values.get(k)]
        if missing:
            raise NixflyError(
                f"{s.env_file.name} lacks required secrets: {', '.join(missing)}",
                "set them in .env or the environment, then `inv bundle`",
            )
        # Refuses any value the flyctl in use cannot carry, before anything is sent.
        encode_all(values, self._seen().flyctl_release())

    def stage_secrets(self, values: dict[str, str] | None = None, *, stage: bool = True) -> Outcome:
        s = self.s
        if values is None:
            values, warning = bundle.read_env_fly(s.root, s.env_file, self.runner)
            if warning:
                console.warn(warning)
            if not os.path.lexists(s.env_file):
                raise NixflyError(f"{s.env_file.name} not found", "run `inv bundle`")
        self._check_secrets(values)
        release = self._seen().flyctl_release()
        if not self._exists() and not self.s.dry_run:
            raise NixflyError(f"app {s.app} does not exist yet", "run `inv apps.create` or `inv deploy`")
        remote = set() if self.created else {secret.name for secret in self._seen().secrets()}
        prints = Fingerprints(s.state_dir, s.app)
        changed = prints.changed(values, remote)
        if not changed:
            return skipped(f"{len(values)} secrets unchanged")
        self.fly.import_secrets(s.app, encode_all(changed, release), stage=stage)
        names = ", ".join(changed)
        if self.s.dry_run:
            return planned(f"would stage {names}")
        prints.record(changed)
        return done(f"{'staged' if stage else 'set'} {names}")

    def push_image(self, build: BuildHost, candidate: Candidate) -> Outcome:
        """builder=image: the mode's OCI image from Nix, built from the source the closure was built from
        (with --skip-build: the checkout now, then checked to hold that closure), pushed with skopeo unless
        the registry has it."""
        s = self.s
        if s.builder != "image":
            return skipped(
                f"builder is nixpacks ({s.mode.nixpacks_config}; Fly's remote builder makes the image)"
            )
        flake = candidate.source or build.pinned()
        out_link = f"{s.mode.out_link}-image"
        built = image.build_on(build, s.mode.image_attr, out_link, self.runner, flake=flake)
        if self.s.dry_run:
            return planned(
                f"would build .#{s.mode.image_attr}{build.where} and push it to {s.registry}/{s.app}"
            )
        if candidate.store_path:
            image.require_tested(built.store_path, candidate.store_path)
        tag = image.reference(s.registry, s.app, built.store_path)
        pushed = image.push(self.runner, built.store_path, tag, self.fly.registry_password())
        if not pushed.digest:
            raise NixflyError(f"the registry reported no digest for {tag}", "push it again: `inv image.push`")
        # Fly is told the digest, never the tag: a tag can be moved, the digest names these bytes.
        self.image_digest = pushed.digest
        self.image_store_path = built.store_path
        self.image_ref = ref = image.pinned(tag, pushed.digest)
        live = plan.live_release(self._seen().releases()) if not self.created else None
        if live is not None and live.image_ref == ref:
            return skipped(f"already in registry: {ref} is what runs now")
        return done(f"{'pushed' if pushed.uploaded else 'already in registry'}: {ref} (tag {tag})")

    def _require_tested_source(self, build: BuildHost, candidate: Candidate) -> None:
        """Refuse, before Fly changes, a deploy whose artifact would not be the smoke-tested closure: the
        checkout now (what Fly's nixpacks builder uploads, or what the image is built from after
        --skip-build) must evaluate to it. The image builder builds from ``candidate.source`` when the
        closure was built in this run; the image's layers are checked too (``image.require_tested``)."""
        s = self.s
        if self.options.skip_smoke or not candidate.store_path or build.endpoint is not None:
            return  # nothing was tested here; with --on the build host's copy is what was tested
        if s.builder == "image" and candidate.source:
            return
        now = build.pinned()
        if now == candidate.source:
            return
        attr = s.mode.flake_attr
        if build.out_path(now, attr) != candidate.store_path:
            ships = "Fly's builder" if s.builder == "nixpacks" else "the image"
            raise NixflyError(
                f"the checkout no longer builds the tested closure {candidate.store_path} "
                f"(.#{attr} changed since it was built): {ships} would ship untested code",
                "run `inv deploy` without --skip-build, or restore the checkout ./result was built from",
            )
        if s.builder == "image":
            candidate.source = now  # the image is built from this very source, which builds the closure

    def record_release(self) -> Outcome:
        if not self._exists():
            return planned("no release yet (new app)")
        self.previous = None if self.created else plan.live_release(self._seen().releases())
        if self.previous is None:
            return done("first deploy: nothing to roll back to")
        return done(f"live: v{self.previous.version} {self.previous.image_ref}")

    def deploy(self, candidate: Candidate) -> Outcome:
        s = self.s
        decision = plan.deploy_decision(
            self.previous, read_record(self._record_path()), self._inputs(candidate), force=self.options.force
        )
        if not decision.deploy:
            return skipped(decision.reason)
        self.deployed = self.fly.deploy(
            s.app,
            s.fly_config,
            image=self.image_ref,
            nixpacks_config="" if self.image_ref else s.mode.nixpacks_config,
            strategy=s.strategy,
            cwd=s.root,
            ha=self.ha,
        )
        if self.s.dry_run:
            return planned(f"would deploy {s.app} with {s.fly_config.name}")
        self.deploy_made = True
        shown = f"v{self.deployed.version} {self.deployed.image_ref}" if self.deployed else "v?"
        return done(f"released {shown} ({decision.reason})")

    def verify(self, candidate: Candidate) -> Outcome:
        s = self.s
        if self.s.dry_run:
            return planned(
                f"would wait for machines, checks and {s.health_url} to answer from the new release"
            )
        min_running = min_machines_running(flytoml.load(self.s.fly_config))
        if not self.deploy_made and self.previous is not None:
            # Nothing was deployed: judge the live release from what was read, ask Fly again only if unsure.
            status = self._seen().status()
            found = status.machines if status else ()
            machines = judge(found, {}, version=self.previous.version, min_running=min_running)
            http = http_ok(s.health_url, s.health.http_timeout, Expect(release=self.previous.image_ref))
            if machines.healthy and http.healthy:
                pinned = f"; {digest.require(found, self.image_digest)}" if self.image_digest else ""
                self.verified = tuple(found)
                return done(
                    f"v{self.previous.version} still healthy: {machines.detail}; {http.detail}{pinned}",
                    region_table(self._title(self.previous.version), found),
                )
        version, image_ref = self._live()
        healthy = wait_for(self.fly, s, version=version, image_ref=image_ref)
        # Healthy is not enough: every machine must run the bytes that were pushed (else: rolled back).
        pinned = f"; {digest.require(healthy.machines, self.image_digest)}" if self.image_digest else ""
        self.verified = healthy.machines
        if self.deploy_made and version:
            record = {"version": version, "inputs": self._inputs(candidate)}
            write_atomic(self._record_path(), json.dumps(record) + "\n", mode=0o644)
        return done(healthy.detail + pinned, healthy.table(self._title(version)))

    def write_receipt(self, candidate: Candidate) -> Outcome:
        """The live release's receipt and SBOM, pushed beside its image (once per release)."""
        s = self.s
        if self.s.dry_run:
            return planned(f"would push the receipt and SBOM beside the image in {self._repository()}")
        if s.builder == "nixpacks":
            try:
                if not self.runner.which("skopeo"):
                    raise NixflyError("skopeo not found on PATH (nixfly pushes receipts with it)")
                return self._push_receipt(candidate)
            except NixflyError as exc:
                # flyctl pushed the image with its own login; a nixpacks deploy needs neither skopeo nor
                # the registry from nixfly, so a receipt that cannot be kept does not fail the release.
                console.warn(f"the release is live, but its receipt could not be kept: {exc.message}")
                return skipped(f"receipt not kept: {exc.message}")
        return self._push_receipt(candidate)

    def _push_receipt(self, candidate: Candidate) -> Outcome:
        version, image_ref = self._live()
        repository = self._repository()
        if not self.deploy_made and self.previous is not None and self._live_receipt() is not None:
            # Nothing was deployed and the live release's receipt was read with the other reads: kept.
            where = receipt.artifact_ref(image_ref, version, repository)
            return skipped(f"v{version} has its receipt: {where}")
        password = self.fly.registry_password()
        if self.s.builder == "nixpacks":
            document = sbom.to_json(self._nixpacks_manifest())
            made = self._nixpacks_receipt(version, image_ref, receipt.digest_of(document))
        else:
            document = sbom.to_json(sbom.manifest_of(self.runner, candidate.store_path))
            made = self._receipt(candidate, version, image_ref, receipt.digest_of(document))
        where = receipts.push(self.runner, password, made, document, repository)
        return done(f"v{version}: {where}")

    def _nixpacks_receipt(self, version: int, image_ref: str, sbom_digest: str) -> receipt.Receipt:
        """A nixpacks release's receipt: no closure here and no smoke run on what Fly's builder made; the
        image digest is what the verified machines run (``machines list``'s ``image_ref.digest``)."""
        made = self._receipt(Candidate(""), version, image_ref, sbom_digest)
        digests = sorted({m.digest for m in self.verified if m.digest})
        smoke = receipt.Smoke("", receipts.NIXPACKS_NOT_RUN, "")
        return replace(made, image_digest=",".join(digests), smoke=smoke)

    def _receipt(
        self, candidate: Candidate, version: int, image_ref: str, sbom_digest: str
    ) -> receipt.Receipt:
        s = self.s
        machines, regions = receipt.machines_of(self.verified)
        flyctl = self._seen().flyctl_release()
        return receipt.Receipt(
            app=s.app,
            mode=s.mode.name,
            target="fly",
            release=version,
            revision=git.revision(self.runner, s.root),
            dirty=git.is_dirty(self.runner, s.root),
            closure=candidate.store_path,
            sbom_digest=sbom_digest,
            smoke=receipt.Smoke(
                candidate.store_path, candidate.smoke or "unknown", receipt.smoke_tests(s.mode.smoke)
            ),
            started_at=self.started_at,
            finished_at=receipt.now(),
            image=image_ref,
            image_digest=image_ref.partition("@")[2],
            image_store_path=self.image_store_path,
            image_deriver=self._deriver(),
            flyctl=".".join(map(str, flyctl)) if flyctl else "unknown",
            machines=machines,
            regions=regions,
            fly_toml=s.fly_config.read_text(),
            secrets=Fingerprints(s.state_dir, s.app).load(),
        )

    def _deriver(self) -> str:
        return Nix(self.runner, self.s.root).deriver(self.image_store_path) if self.image_store_path else ""

    # --- after a failure ------------------------------------------------------------------------------------
    def recover(self, pipeline: Pipeline, step: str, error: NixflyError) -> None:
        """After a failed deploy or verify, put the previous release back (Fly will not)."""
        if self.s.dry_run:
            return
        released = step == "verify" or (step == "deploy" and self._new_release_made())
        decision = plan.recovery(
            step, error, released=released, rollback=self.options.rollback, previous=self.previous
        )
        mode = self.s.mode.name
        if decision == "nothing":
            if step == "scale":
                version, _ = self._live()
                error.add_note(f"v{version} is live and verified; not every region has its machines yet")
                error.hint = (
                    f"`inv status --mode {mode}` shows them; `inv deploy --mode {mode}` converges again"
                )
            return
        error.hint = f"see `inv logs --mode {mode}`"
        if decision == "keep":
            error.add_note("automatic rollback is off (--no-rollback)")
            error.hint = f"`inv rollback --mode {mode}` puts the previous release back"
            return
        if decision == "first":
            error.add_note(f"this was the first deploy of {self.s.app}: nothing to roll back to")
            return
        target = self.previous
        assert target is not None
        try:
            pipeline.run_extra("rollback", lambda: self.rollback_to(target, self._previous_config()))
        except NixflyError as failed:
            if failed.exit_code != 1:
                raise
            error.add_note(f"rollback to v{target.version} FAILED too: {failed.message}")
            error.hint = "the app may be down: `inv status`, `inv logs`"
            return
        error.add_note(f"rolled back to v{target.version} ({target.image_ref})")

    def _previous_config(self) -> Path | None:
        """The fly toml the previous release was deployed with (its receipt, read with the other reads), so
        an automatic rollback puts its app config back too; None when it has no receipt."""
        kept = self._live_receipt()
        return restore.config_file(self.s.state_dir, kept) if kept is not None else None

    def _live_receipt(self) -> receipt.Receipt | None:
        """The previous (live) release's receipt as read with the other reads; None when it has none or
        it could not be read."""
        try:
            live = self._seen().live_release()
        except NixflyError:
            return None
        if live is None or self.previous is None or live[0].release != self.previous.version:
            return None
        return live[0]

    def interrupted(self, step: str) -> str:
        back = (
            f"`inv rollback --to {self.previous.version}` puts v{self.previous.version} back"
            if self.previous
            else ""
        )
        if step == "deploy":
            return "flyctl deploy was stopped part-way: `inv status` shows what each machine runs" + (
                f"; {back}" if back else ""
            )
        if step == "verify" and self.deployed is not None:
            return f"v{self.deployed.version} is live and was not verified; nothing was rolled back" + (
                f": {back}" if back else ""
            )
        if step == "rollback" and self.previous is not None:
            return f"the rollback was stopped part-way: {back}"
        if step == "scale":
            mode = self.s.mode.name
            return (
                f"fly scale count was stopped part-way: `inv status --mode {mode}` shows the machines per "
                f"region; `inv deploy --mode {mode}` converges again (an unchanged release is not redeployed)"
            )
        return ""

    def finish(self) -> None:
        """Fly's own output already said where the app answers."""

    def rollback_to(self, release: FlyRelease, config: Path | None = None) -> Outcome:
        """``fly deploy --image`` of ``release`` with ``--strategy immediate``: every machine is updated at
        once, in every region, stopped ones included; then every one must carry the new release.
        ``config``: the fly toml to deploy with (release N's own, from its receipt), else the checkout's."""
        s = self.s
        made = self.fly.deploy(
            s.app, config or s.fly_config, image=release.image_ref, strategy="immediate", cwd=s.root
        )
        version = made.version if made else 0
        healthy = wait_for(self.fly, s, version=version, image_ref=release.image_ref)
        return done(
            f"v{release.version} live again (as v{version}): {healthy.detail}",
            healthy.table(self._title(version)),
        )

    # --- Target: what the tasks ask afterwards --------------------------------------------------------------
    def label(self) -> str:
        return ""  # Fly is the default target: messages name the app only

    def deploy_command(self) -> str:
        return f"deploy --mode {self.s.mode.name}"

    def lock_status(self) -> None:
        s = self.s
        holder = lock.read(lock.lock_path(s.state_dir, s.app))
        if holder is None:
            console.ok(f"{s.app}: not locked")
        elif holder.damaged:
            console.warn(f"{s.app}: DAMAGED lock file ({holder.damaged}): `inv lock.release` removes it")
        elif lock.is_stale(holder):
            console.warn(
                f"{s.app}: STALE lock of {holder.describe()} (process gone): `inv lock.release` removes it"
            )
        else:
            console.say(f"{s.app}: locked by {holder.describe()} running `{holder.command}`")

    def lock_release(self, *, force: bool) -> None:
        s = self.s
        holder = lock.release(s.state_dir, s.app, force=force)
        console.ok(f"{s.app}: released lock of {holder.describe()}" if holder else f"{s.app}: was not locked")

    def releases(self, *, as_json: bool) -> None:
        """Fly's releases, newest first, with the receipts kept beside their images (read at once)."""
        found = self.fly.releases(self.s.app)
        kept = receipts.read_all(self.runner, self.fly, found, self._repository())
        if as_json:
            print_json(
                [{**asdict(r), "receipt": asdict(k) if (k := kept[r.version]) else None} for r in found]
            )
            return
        console.table(
            f"{self.s.app}: releases",
            ("version", "status", "image", "created", "receipt"),
            [
                (f"v{r.version}", r.status, r.image_ref, r.created_at, receipts.summary(kept[r.version]))
                for r in found
            ],
        )

    def diff(self, old: str, new: str, *, as_json: bool) -> None:
        """A release number (``3``, ``v3``) is read from the SBOM kept beside that release's image, so any
        checkout can compare any two; ``old`` defaults to the current release. Anything else (a store path,
        an out-link, a saved SBOM) is read here, as ``inv diff`` reads it."""
        s = self.s
        found = self.fly.releases(s.app)

        def side(text: str) -> Manifest:
            match = manifests.RELEASE.fullmatch(text)
            if not match:
                return manifests.resolve(s, self.runner, text)
            number = int(match[1])
            release = next((r for r in found if r.version == number), None)
            have = ", ".join(f"v{r.version}" for r in found) or "none"
            if release is None:
                raise NixflyError(
                    f"{s.app} has no release v{number} (releases: {have})", "`inv releases` lists them"
                )
            whole = receipts.read_whole(self.fly, release, self._repository())
            if whole is None:
                raise NixflyError(
                    f"{s.app} v{number} has no manifest kept beside its image (deployed by hand, or before "
                    "nixfly kept receipts)",
                    "name a store path, an out-link or a saved SBOM instead",
                )
            return whole[1]

        if not old:
            current = plan.live_release(found)
            if current is None:
                raise NixflyError(f"{s.app} has no release on Fly yet", "name what to compare with: --from …")
            old = str(current.version)
        plandiff.show(side(old), side(new or manifests.working_tree(s)), as_json=as_json)

    def status(self, *, as_json: bool) -> None:
        self._mask_known_secrets()
        app = self.s.app
        status = self.fly.app_status(app)
        if status is None:
            raise NixflyError(f"app {app} does not exist on Fly.io", "run `inv deploy` or `inv apps.create`")
        machines = sorted(status.machines, key=lambda m: (m.region, m.id))
        regions = region_table(f"{app}: machines per region", machines)
        if as_json:
            printed = json.loads(REDACT(json.dumps(status.printed)))
            print_json({**printed, "regions": regions.as_json()["rows"]})
            return
        regions.show()
        console.table(
            f"{app}: {status.status or '?'}, release v{status.version}, {status.hostname}",
            ("region", "machine", "state", "release", "image", "checks"),
            [
                (
                    m.region,
                    m.id,
                    m.state,
                    f"v{m.release_version}" if m.release_version else "-",
                    m.image,
                    ", ".join(f"{c.name}={c.status}" for c in m.checks) or "-",
                )
                for m in machines
            ],
        )

    def logs(self, *, lines: int, timeout: float) -> str:
        self._mask_known_secrets()
        text = self.fly.logs(self.s.app, timeout=timeout)
        if text is None:
            console.note(f"no (more) logs within {timeout:g}s")
            return ""
        return REDACT(text)

    def rollback(self, to: int) -> str:
        s = self.s
        current, chosen = plan.rollback_choice(self.fly.releases(s.app), to)
        console.say(f"rolling {s.app} back from v{current.version} to v{chosen.version} ({chosen.image_ref})")
        password = self.fly.registry_password() if receipts.kept_for(chosen) else ""
        kept = self._read_receipt(password, chosen) if password else None
        if kept is None:
            console.warn(
                f"v{chosen.version} has no receipt: its image comes back, the app config stays "
                f"{s.fly_config.name} as it is now"
            )
        else:
            changed = restore.secrets_since(kept.secrets, Fingerprints(s.state_dir, s.app).load())
            console.say(f"v{chosen.version}'s app config (fly toml) comes back from its receipt")
            if changed:
                console.warn(
                    f"secrets changed since v{chosen.version} (they stay as now): {'; '.join(changed)}"
                )
        if self.s.dry_run:
            self.fly.deploy(s.app, s.fly_config, image=chosen.image_ref, strategy="immediate")
            return f"would roll {s.app} back to v{chosen.version}"
        revision = git.revision(self.runner, s.root)
        with lock.held(s.state_dir, s.app, revision, f"rollback --to {chosen.version}"):
            # Only nixfly's own images (deployed by digest) can be pushed again from here; a nixpacks image
            # (a flyctl deployment tag) is Fly's to keep, and flyctl says if it is gone.
            pinned = kept is not None and "@" in kept.image
            rebuilt = restore.ensure_image(self.runner, s.root, password, kept) if kept and pinned else ""
            if rebuilt:
                console.note(rebuilt)
            config = restore.config_file(s.state_dir, kept) if kept else None
            detail = self.rollback_to(chosen, config).detail
            return f"{detail}; {rebuilt}" if rebuilt else detail

    def _read_receipt(self, password: str, chosen: FlyRelease) -> receipt.Receipt | None:
        try:
            return receipts.read(self.runner, password, chosen, self._repository())
        except NixflyError as exc:
            if "@" in chosen.image_ref:
                raise
            console.warn(f"v{chosen.version}'s receipt cannot be read: {exc.message}")
            return None

    def stop(self) -> str:
        raise NixflyError("`inv stop` works on local and ssh:// targets", "on Fly: `flyctl scale count 0`")

    def close(self) -> None:
        if self.observed is not None:
            self.observed.close()

    # --- helpers --------------------------------------------------------------------------------------------
    def _scaler(self) -> Scaler:
        assert self.scaler is not None, "preflight makes the scaler of a mode with regions"
        return self.scaler

    def _live(self) -> tuple[int, str]:
        """The release this deploy leaves live (version, image): the one it made, else the one it found."""
        if self.deployed is not None:
            return self.deployed.version, self.deployed.image_ref
        if self.previous is not None:
            return self.previous.version, self.previous.image_ref
        return 0, ""

    def _title(self, version: int) -> str:
        return (
            f"{self.s.app} v{version}: machines per region"
            if version
            else f"{self.s.app}: machines per region"
        )

    def _new_release_made(self) -> bool:
        try:
            releases = self.fly.releases(self.s.app)
        except NixflyError:
            return True  # cannot tell: assume the worst and roll back
        newest = releases[0].version if releases else 0
        return newest > (self.previous.version if self.previous else 0)

    def _mask_known_secrets(self) -> None:
        """Logs and status print what Fly says; mask what nixfly knows to be secret before showing it."""
        if self.s.env_file.is_file() and not self.s.env_file.is_symlink():
            with contextlib.suppress(NixflyError):
                envfiles.read(self.s.env_file)  # registers every value with REDACT
        for name in TOKEN_ENV:
            if os.environ.get(name):
                REDACT.add(os.environ[name])

    def _record_path(self) -> Path:
        return self.s.state_dir / f"deployed-{self.s.app}.json"

    def _inputs(self, candidate: Candidate) -> str:
        s = self.s
        files = [s.fly_config.read_bytes()]
        if s.builder == "nixpacks" and (s.root / s.mode.nixpacks_config).is_file():
            files.append((s.root / s.mode.nixpacks_config).read_bytes())
        prints = Fingerprints(s.state_dir, s.app).load()
        return plan.inputs_digest(s.builder, candidate.store_path, self.image_ref, s.strategy, files, prints)
