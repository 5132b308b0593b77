"""Preview apps on Fly: ``inv preview`` and ``preview.list`` / ``preview.destroy`` / ``preview.prune``.

A preview is the mode deployed to an app of its own through the very same pipeline (build, smoke, bundle,
app, marker, volume, secrets, image, release, deploy, verify): ``PreviewTarget`` is a ``FlyTarget`` that
deploys another app from a fly toml derived from the mode's (``nixfly.preview.preview_toml``), runs one
machine (``--ha=false``), sends only the secrets ``nixfly.preview.secrets`` names, and marks the app as
nixfly's right after creating it. Destroy and prune read that marker back first and never touch an app
without it, whatever its name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from nixfly import console, envfiles, flytoml, git, lock
from nixfly.buildhost import BuildHost, open_build_host
from nixfly.config import Preview, Settings
from nixfly.errors import NixflyError
from nixfly.files import write_atomic
from nixfly.fly.target import FlyTarget
from nixfly.flyctl import AppMissing, Flyctl
from nixfly.flysecrets import encode_all
from nixfly.futures import result
from nixfly.pipeline import Outcome, Step, done, planned, skipped
from nixfly.preview import (
    Marker,
    age,
    app_name,
    duration,
    parse_marker,
    pr_number,
    prefix,
    preview_secrets,
    preview_toml,
)
from nixfly.runner import Runner
from nixfly.target import Candidate, Options

# The marker secret's value is never read back (flyctl lists names only); it says what the name means.
MARKER_VALUE = "created by nixfly inv preview"


def url_of(app: str) -> str:
    return f"https://{app}.fly.dev"


class PreviewTarget(FlyTarget):
    """The Fly target for one preview app: the steps of a deploy plus the marker, one machine, own secrets."""

    ha = False

    def __init__(
        self,
        settings: Settings,
        here: Runner,
        options: Options,
        preview: Preview,
        marker: Marker,
        own: dict[str, str],
    ) -> None:
        super().__init__(settings, here, options)
        self.preview = preview
        self.marker = marker
        self.own = own

    def deploy_steps(self, candidate: Candidate, build: BuildHost) -> list[Step]:
        steps = super().deploy_steps(candidate, build)
        at = [name for name, _ in steps].index("app") + 1
        return [*steps[:at], ("marker", self.ensure_marker), *steps[at:], ("url", self.url)]

    def ensure_marker(self) -> Outcome:
        """Mark a new app as this PR's preview at once (a staged secret needs no machine); refuse an app of
        that name that nixfly did not make, before anything is changed in it."""
        s, wanted = self.s, self.marker
        if self.created or (self.s.dry_run and not self._exists()):
            marker = encode_all({wanted.name: MARKER_VALUE}, self._seen().flyctl_release())
            self.fly.import_secrets(s.app, marker, stage=True)
            what = f"{s.app} as {describe(wanted)}"
            return planned(f"would mark {what}") if self.s.dry_run else done(f"marked {what}")
        found = parse_marker([secret.name for secret in self._seen().secrets()])
        if found is None:
            raise NixflyError(
                f"app {s.app} exists but carries no nixfly preview marker: nixfly did not create it",
                "leave it alone and pick another name (nixfly.preview.name / branch_name in invoke.yaml)",
            )
        if found.pr != wanted.pr:
            raise NixflyError(
                f"app {s.app} is nixfly's {describe(found)}, not {describe(wanted)}",
                "check nixfly.preview.name / branch_name: two previews must not share an app",
            )
        return skipped(f"{describe(found)} (created {stamp(found.created)})")

    def stage_secrets(self, values: dict[str, str] | None = None, *, stage: bool = True) -> Outcome:
        """Only the names ``nixfly.preview.secrets`` lists reach a preview; the production bundle is never
        sent whole."""
        chosen = preview_secrets(self.preview.secrets, values or {}, self.own)
        return super().stage_secrets(chosen, stage=stage)

    def url(self) -> Outcome:
        where = url_of(self.s.app)
        return planned(f"would answer at {where}") if self.s.dry_run else done(where)

    def finish(self) -> None:
        """The URL for people (stderr), for scripts (stdout, unless --json holds stdout) and for a GitHub
        workflow's later steps (``$GITHUB_OUTPUT``: url, app)."""
        where = url_of(self.s.app)
        console.ok(f"preview {self.s.app}: {where}")
        if not self.options.json_summary:
            print(where, flush=True)
        output = os.environ.get("GITHUB_OUTPUT")
        if output:
            with open(output, "a", encoding="utf-8") as handle:
                handle.write(f"url={where}\napp={self.s.app}\n")


def describe(marker: Marker) -> str:
    return f"preview of PR {marker.pr}" if marker.pr else "branch preview"


def stamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def config_of(c: Any) -> Preview:
    """``nixfly.preview`` of a task's Invoke config."""
    from nixfly.config import load_preview

    return load_preview(c.config.get("nixfly") if hasattr(c, "config") else None)


def name_for(s: Settings, here: Runner, preview: Preview, pr_text: str) -> tuple[str, int]:
    """The preview app for ``--pr`` (checked), else for the checked-out branch; and the PR (0: a branch)."""
    pr = pr_number(pr_text) if pr_text != "" else 0
    branch = ""
    if not pr:
        branch = git.branch(here, s.root)
        if not branch:
            raise NixflyError("not on a branch (detached HEAD): no preview name", "pass --pr N")
    return app_name(preview, s.app, pr=pr, branch=branch), pr


def own_secrets(s: Settings, preview: Preview) -> dict[str, str]:
    """``.env.preview``'s values, when it exists; a name not on the list is refused here, before anything."""
    path = s.root / preview.env_file
    own = envfiles.read(path) if os.path.lexists(path) else {}
    preview_secrets(preview.secrets, {}, own)
    return own


def settings_for(s: Settings, preview: Preview, app: str, where: Path) -> Settings:
    """The mode's settings aimed at the preview app: its own fly toml (written into ``where``), volume size,
    no declared regions, and only the required secrets a preview is allowed."""
    cfg = flytoml.load(s.fly_config)
    path = where / f"{app}.toml"
    write_atomic(path, preview_toml(cfg.raw, app, preview.env, preview.volume_size_gb), mode=0o644)
    mode = dataclasses.replace(
        s.mode,
        fly_config=str(path),
        volume_size_gb=preview.volume_size_gb,
        regions={},
        required_secrets=tuple(k for k in s.mode.required_secrets if k in preview.secrets),
    )
    return dataclasses.replace(s, mode=mode, app=app)


def deploy(s: Settings, here: Runner, preview: Preview, *, pr: str, options: Options) -> None:
    """``inv preview``: the whole deploy pipeline to the preview app of ``--pr`` or of the branch."""
    from nixfly.engine import Engine

    app, number = name_for(s, here, preview, pr)
    own = own_secrets(s, preview)
    with ExitStack() as stack:
        # A dry run leaves nothing behind, not even the derived fly toml.
        where = Path(stack.enter_context(TemporaryDirectory())) if s.dry_run else s.state_dir / "preview"
        chosen = settings_for(s, preview, app, where)
        target = PreviewTarget(chosen, here, options, preview, Marker(number, int(time.time())), own)
        stack.callback(target.close)
        build = stack.enter_context(open_build_host(chosen, here))
        Engine(chosen, here, options, target, build).run()


# --- list, destroy, prune -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Found:
    """A preview app nixfly made: its marker read back from Fly, and when it was last deployed."""

    app: str
    marker: Marker
    # Unix seconds of its newest release (a push to the PR deploys again); the marker's time if none.
    updated: int = 0

    @property
    def last_active(self) -> int:
        return max(self.marker.created, self.updated)

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "app": self.app,
            "pr": self.marker.pr or None,
            "created": stamp(self.marker.created),
            "age_seconds": max(0, int(now - self.marker.created)),
            "last_deployed": stamp(self.updated) if self.updated else None,
            "idle_seconds": max(0, int(now - self.last_active)),
            "url": url_of(self.app),
        }


def newest_release(fly: Flyctl, app: str) -> int:
    """Unix seconds of the app's newest release (``releases --json`` ``CreatedAt``, RFC 3339); 0 if none."""
    times = []
    for release in fly.releases(app):
        with contextlib.suppress(ValueError):
            times.append(int(datetime.fromisoformat(release.created_at).timestamp()))
    return max(times, default=0)


def marker_of(fly: Flyctl, app: str) -> Marker | None:
    """The app's marker; None without one. ``AppMissing`` when the app is gone."""
    return parse_marker([secret.name for secret in fly.secrets(app)])


def find(fly: Flyctl, s: Settings, preview: Preview) -> list[Found]:
    """Every app that starts like the mode's preview names AND carries nixfly's marker; never the mode's
    own app. Markers are read four apps at a time."""
    head = prefix(preview, s.app)
    names = sorted(a for a in fly.apps() if a.startswith(head) and a != s.app)

    def read(app: str) -> Found | None:
        try:
            marker = marker_of(fly, app)
            return Found(app, marker, newest_release(fly, app)) if marker else None
        except AppMissing:
            return None  # destroyed since the list was read

    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nixfly-preview")
    try:
        reads = [pool.submit(read, name) for name in names]
        return [found for found in map(result, reads) if found is not None]
    finally:
        # On Ctrl-C: return at once; the pipeline stops the reads' flyctl processes.
        pool.shutdown(wait=False, cancel_futures=True)


def list_previews(s: Settings, here: Runner, preview: Preview, *, as_json: bool) -> None:
    """``inv preview.list``: every preview of the mode, its PR and age."""
    from nixfly.console import print_json

    fly = Flyctl(here, s.flyctl)
    now = time.time()
    found = find(fly, s, preview)
    if as_json:
        print_json({"previews": [f.as_json(now) for f in found]})
        return
    console.table(
        f"previews of {s.app}: {len(found)}",
        ("app", "pr", "age", "idle", "created", "url"),
        [
            (
                f.app,
                str(f.marker.pr or "branch"),
                age(now - f.marker.created),
                age(now - f.last_active),
                stamp(f.marker.created),
                url_of(f.app),
            )
            for f in found
        ],
    )


def _destroy(fly: Flyctl, s: Settings, found: Found) -> dict[str, Any]:
    """One marked app and everything in it; its volumes are named first (they go with the app)."""
    volumes = [f"{v.name} ({v.id})" for v in fly.volumes(found.app)]
    with ExitStack() as stack:
        if not s.dry_run:
            revision = git.revision(fly.runner, s.root)
            stack.enter_context(lock.held(s.state_dir, found.app, revision, "preview.destroy"))
        fly.destroy_app(found.app)
    verb = "would destroy" if s.dry_run else "destroyed"
    console.ok(f"{verb} {found.app} ({describe(found.marker)}), volumes: {', '.join(volumes) or 'none'}")
    return {"app": found.app, "pr": found.marker.pr or None, "volumes": volumes}


def _report(s: Settings, gone: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        from nixfly.console import print_json

        print_json({"dry_run": s.dry_run, "destroyed": gone})


def destroy(s: Settings, here: Runner, preview: Preview, *, pr: str, as_json: bool) -> None:
    """``inv preview.destroy``: the preview app of ``--pr`` (or of the branch) with its volumes, only if it
    carries nixfly's marker. An app already gone is not an error."""
    app, _ = name_for(s, here, preview, pr)
    fly = Flyctl(here, s.flyctl)
    try:
        marker = marker_of(fly, app)
    except AppMissing:
        console.ok(f"no app {app}: nothing to destroy")
        _report(s, [], as_json=as_json)
        return
    if marker is None:
        raise NixflyError(
            f"app {app} carries no nixfly preview marker: nixfly did not create it and will not destroy it",
            f"if it must go, destroy it yourself: `flyctl apps destroy {app}`",
        )
    _report(s, [_destroy(fly, s, Found(app, marker))], as_json=as_json)


def prune(s: Settings, here: Runner, preview: Preview, *, older_than: str, as_json: bool) -> None:
    """``inv preview.prune``: destroy every marked preview neither created nor deployed for ``older_than``
    (a pull request still being pushed to keeps its preview)."""
    limit = duration(older_than)
    fly = Flyctl(here, s.flyctl)
    now = time.time()
    stale = [f for f in find(fly, s, preview) if now - f.last_active > limit]
    if not stale:
        console.ok(f"no preview of {s.app} is older than {older_than}")
    _report(s, [_destroy(fly, s, found) for found in stale], as_json=as_json)
