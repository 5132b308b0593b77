"""nixfly: build the Nix flake, smoke-test it, and deploy it to Fly.io.

Start with `inv --list`; `inv --help TASK` documents every flag. The logic lives in the `nixfly` package;
this file is its table of contents. Modes: `integrated` (web + ai-server in one Machine, app `oneshot`) and
`ai-server-only` (app `oneshot-ai-providers`); see nixfly/config.py or override them in invoke.yaml.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from invoke import Collection, Exit, task

from nixfly.cli import clean_exit, guard, lazy_module, seconds, settings, state_dir, whole

if TYPE_CHECKING:
    from nixfly import commands, runner
else:
    commands = lazy_module("nixfly.commands")  # the task bodies' logic, loaded when a body first runs
    runner = lazy_module("nixfly.runner")  # runner.runner.here(s): the one runner of a task run

ROOT = Path(__file__).resolve().parent
guard(ROOT)  # invoke.yaml is read by Invoke after this file: a bad one is one line, not its traceback

MODE = "deploy mode: integrated or ai-server-only (default: integrated)"
APP = "Fly app name (default: the mode's app from config)"
DRY = "print what would change, change nothing (default: off)"
TARGET = (
    "fly, local (this machine), ssh://user@host[:port], several ssh:// URLs separated by commas, or a group "
    "named in nixfly.groups (default: fly)"
)
ON = "run the Nix steps on this Linux host over SSH: user@host[:port] (default: here)"


@task(
    help={
        "mode": MODE,
        "app": APP,
        "region": "Fly region for new volumes (default: primary_region of the mode's fly toml)",
        "dry_run": DRY,
        "skip_build": "use the existing ./result instead of running nix build (default: off)",
        "skip_smoke": "do not run the smoke tests (default: off)",
        "strategy": "flyctl deploy strategy: rolling, canary, bluegreen, immediate (default: flyctl's)",
        "rollback": "redeploy the previous release when the new one is unhealthy (default: on)",
        "force": "deploy even when the live release has this closure, config and secrets (default: off)",
        "json": "also print the step summary as JSON on stdout (default: off)",
        "builder": "image (the smoke-tested closure as a Nix-built OCI image, no Docker) or nixpacks "
        "(Fly's remote Docker builder) (default: nixfly.builder in config, image)",
        "target": TARGET,
        "on": ON,
        "port": "local/ssh targets: serve and health-check on this port (default: fly toml's internal_port)",
        "batch": "a group of hosts: switch this many at a time, each batch health-gated before the next "
        "(default: 1)",
    }
)
@clean_exit
def deploy(
    c,
    mode="integrated",
    app="",
    region="",
    dry_run=False,
    skip_build=False,
    skip_smoke=False,
    strategy="",
    rollback=True,
    force=False,
    json=False,
    builder="",
    target="fly",
    on="",
    port="",
    batch="",
):
    """Build, smoke-test and deploy a mode to Fly.io (or --target local|ssh://), verify, roll back if bad.

    Steps, each skipped when it has nothing to do (the summary table says which):
      preflight → lock → build (nix build) → smoke (tests/smoke against ./result) → bundle (.env.fly)
      → app → volume → secrets (staged) → image (--builder image: push) → release (record what is live)
      → deploy → verify (machines, checks, health URL); a failed verify rolls back to the previous
      release. A mode with nixfly.modes.<mode>.regions ({iad: 2, ams: 1}) also gets regions (the plan,
      first) and scale (`fly scale count` per region, then every machine verified, last).
      --dry-run prints the plan and changes nothing; running again resumes where it stopped.

    To a group of hosts (--target ssh://a,ssh://b or a name from nixfly.groups): every host's lock, the
    closure copied to all at once, then --batch hosts at a time switched and health-gated; a failure puts
    the failed host and those already switched back on their previous generation.

    Examples:
      inv deploy --target local                  # this machine, no Fly account: http://127.0.0.1:4000
      inv deploy --target web --batch 2          # the hosts of nixfly.groups.web, two at a time
      inv deploy --dry-run                       # what a deploy to Fly would do, changing nothing
      inv deploy --mode ai-server-only --builder nixpacks   # Fly builds the image (Docker there)
    """
    from nixfly import engine
    from nixfly.target import Options

    s = settings(
        c, ROOT, mode=mode, app=app, region=region, dry_run=dry_run, strategy=strategy, builder=builder
    )
    options = Options(
        skip_build=skip_build,
        skip_smoke=skip_smoke,
        rollback=rollback,
        force=force,
        json_summary=json,
        batch=whole("batch", batch, low=1),
    )
    engine.deploy(s, runner.here(s), target, options, on=on, port=whole("port", port, low=0, high=65535))


@task(
    positional=["counts"],
    help={
        "counts": "REGION=COUNT pairs, comma-separated (one word), e.g. iad=2,ams=1; regions not named are "
        "left as they are (required)",
        "mode": MODE,
        "app": APP,
        "dry_run": DRY,
        "json": "also print the step summary, plan and regions as JSON on stdout (default: off)",
        "destroy_volumes": "allow a shrink that removes machines with volumes, and DESTROY those volumes and "
        "their data (the plan names them) (default: off: such a shrink is refused)",
        "new_volumes": "new machines get new, empty volumes even where unattached ones could be reused "
        "(flyctl's --with-new-volumes) (default: off)",
    },
)
@clean_exit
def scale(
    c,
    counts=None,
    mode="integrated",
    app="",
    dry_run=False,
    json=False,
    destroy_volumes=False,
    new_volumes=False,
):
    """Set the number of Fly Machines per region (each with its own volume), then verify every one.

    plan (per region: machines now → wanted, volumes to create, reuse or free) → apply (`fly scale count`
    per region, growing regions first) → verify (counts, machines, checks, health URL). Running it again
    changes nothing. A shrink that would leave volumes without their machine is refused unless
    --destroy-volumes. Declared counts (nixfly.modes.<mode>.regions in invoke.yaml) are converged to by
    every `inv deploy`.

    Examples:
      inv scale --mode integrated iad=2,ams=1    # two machines in Ashburn, one in Amsterdam
      inv scale iad=3 --dry-run                  # the plan, changing nothing
      inv scale ams=0 --destroy-volumes          # remove Amsterdam's machine and destroy its volume
    """
    from nixfly.fly.scale import set_counts

    s = settings(c, ROOT, mode=mode, app=app, dry_run=dry_run)
    set_counts(
        s, runner.here(s), counts, destroy_volumes=destroy_volumes, new_volumes=new_volumes, json_summary=json
    )


@task(
    help={
        "mode": MODE,
        "fresh": "run nix build even when nixfly's record says ./result is current (default: off)",
        "rebuild": "nix's --rebuild: build the mode's derivation again and fail if the output differs "
        "from the one in the store, a determinism check; needs an earlier build (default: off)",
        "show_trace": "pass --show-trace to nix for evaluation errors (default: off)",
        "dry_run": DRY,
        "on": ON,
    }
)
@clean_exit
def build(c, mode="integrated", fresh=False, rebuild=False, show_trace=False, dry_run=False, on=""):
    """nix build the mode's flake attribute; prints the store path, closure size and time.

    Skipped when nothing the flake can see changed since the last build (--fresh runs nix anyway).
    Determinism check of what deploys: inv build --rebuild --show-trace
    """
    s = settings(c, ROOT, mode=mode, dry_run=dry_run)
    commands.build(s, fresh=fresh, rebuild=rebuild, show_trace=show_trace, on=on)


@task(help={"env_file": "file to write (default: .env.fly)", "mode": MODE, "dry_run": DRY})
@clean_exit
def bundle(c, env_file="", mode="integrated", dry_run=False):
    """Gather credentials from the environment and .env into .env.fly (0600, never committed)."""
    from nixfly.bundle import refresh_and_report

    s = settings(c, ROOT, mode=mode, env_file=env_file, dry_run=dry_run)
    refresh_and_report(s, runner.here(s))


@task(
    help={
        "mode": MODE,
        "app": APP,
        "env_file": "credentials file to read (default: .env.fly)",
        "stage": "stage for the next deploy instead of restarting machines now (default: on)",
        "dry_run": DRY,
    }
)
@clean_exit
def secrets(c, mode="integrated", app="", env_file="", stage=True, dry_run=False):
    """Send changed secrets from .env.fly to flyctl over stdin (staged for the next deploy)."""
    commands.secrets(settings(c, ROOT, mode=mode, app=app, env_file=env_file, dry_run=dry_run), stage=stage)


@task(help={"mode": MODE})
@clean_exit
def doctor(c, mode="integrated"):
    """Check every precondition of a deploy (nix, flakes, flyctl login, configs, .env.fly) as a table."""
    from nixfly.doctor import report

    s = settings(c, ROOT, mode=mode)
    report(s, runner.here(s))


@task(help={"mode": MODE, "app": APP, "json": "print as JSON (default: off)", "target": TARGET})
@clean_exit
def status(c, mode="integrated", app="", json=False, target="fly"):
    """Show what runs: the app's machines, state, image and health checks (or a local/ssh target's)."""
    from nixfly.engine import opened

    s = settings(c, ROOT, mode=mode, app=app)
    with opened(s, runner.here(s), target) as chosen:
        chosen.status(as_json=json)


@task(
    help={
        "mode": MODE,
        "app": APP,
        "timeout": "stop waiting for logs after this many seconds (default: 15)",
        "target": TARGET,
        "lines": "local/ssh targets: how many lines (default: 100)",
    }
)
@clean_exit
def logs(c, mode="integrated", app="", timeout="", target="fly", lines=""):
    """Print the app's recent logs (bounded: flyctl's --no-tail can poll forever)."""
    from nixfly.engine import opened

    s = settings(c, ROOT, mode=mode, app=app)
    wait = seconds("timeout", timeout, 15.0)
    count = whole("lines", lines, low=1, high=100000) if lines else 100
    with opened(s, runner.here(s), target) as chosen:
        print(chosen.logs(lines=count, timeout=wait), end="")


@task(
    help={
        "mode": MODE,
        "app": APP,
        "json": "print as JSON, each release's receipt whole (default: off)",
        "target": TARGET,
    }
)
@clean_exit
def releases(c, mode="integrated", app="", json=False, target="fly"):
    """List the app's releases, newest first, with each one's image (Fly) or store path (hosts) and receipt.

    Examples:
      inv releases                         # Fly: each release, its image and receipt
      inv releases --target web --json     # each host of group web: its generations, each receipt whole
    """
    commands.releases(settings(c, ROOT, mode=mode, app=app), as_json=json, target=target)


@task(
    help={
        "mode": MODE,
        "app": APP,
        "to": "release version to go back to (default: the previous healthy one)",
        "target": TARGET,
        "dry_run": DRY,
        "json": "also print the outcome and each host's before/after as JSON on stdout (default: off)",
    }
)
@clean_exit
def rollback(c, mode="integrated", app="", to="", dry_run=False, target="fly", json=False):
    """Redeploy an earlier release's image (or a target's earlier generation) and verify it is healthy."""
    s = settings(c, ROOT, mode=mode, app=app, dry_run=dry_run)
    commands.rollback(s, to=whole("to", to, low=0), target=target, as_json=json)


@task(
    help={
        "mode": MODE,
        "target": "local, ssh://user@host[:port], several ssh:// URLs or a group (default: local)",
        "dry_run": DRY,
    }
)
@clean_exit
def stop(c, mode="integrated", target="local", dry_run=False):
    """Stop the mode's service on a local or ssh target (TERM, then KILL after the grace period)."""
    from nixfly import console
    from nixfly.engine import opened

    s = settings(c, ROOT, mode=mode, dry_run=dry_run)
    with opened(s, runner.here(s), target) as chosen:
        console.ok(chosen.stop())


@task(
    help={"web_port": "web port (default: 4000)", "ai_port": "ai-server port (default: 3000)", "dry_run": DRY}
)
@clean_exit
def dev(c, web_port="", ai_port="", dry_run=False):
    """Run web (mix) and ai-server (bun --watch) together with prefixed output; Ctrl-C stops both."""
    from nixfly.dev import run

    s = settings(c, ROOT, dry_run=dry_run)
    code = run(
        runner.here(s),
        s.root,
        whole("web-port", web_port, low=1, high=65535) if web_port else 4000,
        whole("ai-port", ai_port, low=1, high=65535) if ai_port else 3000,
    )
    if code:
        raise Exit(code=code)


@task(help={"state": "also remove .nixfly/ (fingerprints, locks, records) (default: off)", "dry_run": DRY})
@clean_exit
def clean(c, state=False, dry_run=False):
    """Remove build outputs (result links, web/_build); --state also forgets nixfly's records.

    --state refuses while a deploy holds its lock or a local release runs (it holds their pidfiles and GC
    roots): `inv stop --target local` first.
    """
    commands.clean(ROOT, state_dir(c, ROOT), dry_run=dry_run, state=state)


@task(help={"dry_run": DRY})
@clean_exit
def update(c, dry_run=False):
    """nix flake update: move flake.lock to the newest nixpkgs of its branch."""
    from nixfly import console
    from nixfly.nix import Nix

    s = settings(c, ROOT, dry_run=dry_run)
    Nix(runner.here(s), s.root).flake_update()
    console.ok("flake.lock updated: rebuild and smoke before deploying (`nox -s smoke`)")


@task(
    help={
        "mode": MODE,
        "app": APP,
        "release": "a release recorded here (a generation of `inv deploy --target local`) instead of "
        "./result (default: ./result, the working tree's last build)",
        "output": "write the SBOM to this file instead of stdout (default: stdout)",
        "json": "print a summary as JSON instead of the document (store path, paths, packages, bytes); "
        "with --output the document is still written (default: off)",
    }
)
@clean_exit
def sbom(c, mode="integrated", app="", release="", output="", json=False):
    """Write the closure's CycloneDX SBOM: every store path (version, NAR hash, size, references), npm, hex.

    Reads `nix path-info --json --recursive` of ./result (or of --release N) and the bun.lock / mix.lock
    inside that closure; the document is validated against the CycloneDX 1.6 schema before it is written.

    Examples:
      inv sbom --output sbom.json              # the working tree's last build
      inv sbom --release 3 --output v3.json    # what local release 3 (inv deploy --target local) ran
    """
    commands.write_sbom(
        settings(c, ROOT, mode=mode, app=app),
        release=whole("release", release, low=1) if release else 0,
        output=output,
        as_json=json,
    )


@task(
    name="diff",
    help={
        "mode": MODE,
        "app": APP,
        "from_": "the old side: a local release number, a store path, an out-link or an SBOM file "
        "(default: what is live: the local target's current release)",
        "to": "the new side, the same kinds (default: ./result, the working tree's last build)",
        "json": "print the diff as JSON (default: off)",
        "target": "local, ssh://user@host[:port], several ssh:// URLs or a group: a number in --from/--to is "
        "a generation on each host, --from defaults to each host's live one, read there (default: none)",
    },
)
@clean_exit
def diff(c, mode="integrated", app="", from_="", to="", json=False, target=""):
    """Say what changes between two closures: versions, packages added/removed, rebuilt, npm/hex, size.

    Grouped like nvd (version changes, added, removed, closure size) and counted like
    `nix store diff-closures`; "Nothing changes" when both are the same closure.

    Examples:
      inv diff                                 # ./result against the live local release
      inv diff --from 2 --to 3                 # two recorded releases
      inv diff --from v3.json --to result      # a saved SBOM against the last build
      inv diff --target web --from 3 --to 4    # generations 3 and 4 on each host of group web
    """
    s = settings(c, ROOT, mode=mode, app=app)
    commands.closure_diff(s, old=from_, new=to, as_json=json, target=target)


# --- apps.*, volumes.*, lock.* ------------------------------------------------------------------------------
@task(name="create", help={"mode": MODE, "app": APP, "dry_run": DRY})
@clean_exit
def apps_create(c, mode="integrated", app="", dry_run=False):
    """Create the mode's Fly app unless it exists."""
    commands.create_app(settings(c, ROOT, mode=mode, app=app, dry_run=dry_run))


@task(
    name="create",
    help={"mode": MODE, "app": APP, "region": "region (default: the fly toml's)", "dry_run": DRY},
)
@clean_exit
def volumes_create(c, mode="integrated", app="", region="", dry_run=False):
    """Create the mode's volume unless one of that name exists (flyctl itself would add a duplicate)."""
    commands.create_volume(settings(c, ROOT, mode=mode, app=app, region=region, dry_run=dry_run))


LOCK_TARGET = "fly (this checkout's lock), or a host target as for deploy: the lock on each (default: fly)"


@task(name="status", help={"mode": MODE, "app": APP, "target": LOCK_TARGET})
@clean_exit
def lock_status(c, mode="integrated", app="", target="fly"):
    """Say who holds the deploy lock of the app (or of each host of --target), and whether it is stale."""
    from nixfly.engine import opened

    s = settings(c, ROOT, mode=mode, app=app)
    with opened(s, runner.here(s), target) as chosen:
        chosen.lock_status()


@task(
    name="release",
    help={
        "mode": MODE,
        "app": APP,
        "force": "remove a live holder's lock too, or one whose holder cannot be checked (default: off)",
        "target": LOCK_TARGET,
    },
)
@clean_exit
def lock_release(c, mode="integrated", app="", force=False, target="fly"):
    """Remove a stale (or, with --force, any) deploy lock of the app, or of each host of --target."""
    from nixfly.engine import opened

    s = settings(c, ROOT, mode=mode, app=app)
    with opened(s, runner.here(s), target) as chosen:
        chosen.lock_release(force=force)


# --- image.*: the Docker-free path --------------------------------------------------------------------------
@task(name="build", help={"mode": MODE, "dry_run": DRY, "on": ON})
@clean_exit
def image_build(c, mode="integrated", dry_run=False, on=""):
    """Build the mode's OCI image tarball with Nix (dockerTools.buildLayeredImage)."""
    commands.image_build(settings(c, ROOT, mode=mode, dry_run=dry_run), on=on)


@task(name="push", help={"mode": MODE, "app": APP, "dry_run": DRY, "on": ON})
@clean_exit
def image_push(c, mode="integrated", app="", dry_run=False, on=""):
    """Push the mode's image with skopeo to <registry>/<app>:nix-<store hash>, unless already there."""
    commands.image_push(settings(c, ROOT, mode=mode, app=app, dry_run=dry_run), on=on)


@task(name="inspect", help={"mode": MODE, "app": APP, "json": "print as JSON (default: off)"})
@clean_exit
def image_inspect(c, mode="integrated", app="", json=False):
    """Show the mode's image: layers, sizes, command, environment names, and where its manifest travels."""
    commands.image_inspect(settings(c, ROOT, mode=mode, app=app), as_json=json)


# --- cache.*: a Nix binary cache ----------------------------------------------------------------------------
@task(
    name="use",
    help={
        "name": "a Cachix cache name (runs `cachix use NAME`) (default: none)",
        "url": "any binary cache URL (default: none)",
        "key": "the cache's public key (name:base64), with --url (default: none)",
        "dry_run": DRY,
    },
)
@clean_exit
def cache_use(c, name="", url="", key="", dry_run=False):
    """Use a binary cache: Cachix by name, or any cache by URL and public key (added to nix.conf)."""
    from nixfly import cache, console

    s = settings(c, ROOT, dry_run=dry_run)
    console.ok(cache.use(runner.here(s), name=name, url=url, key=key))


@task(
    name="push",
    help={
        "mode": MODE,
        "name": "Cachix cache name (default: none)",
        "url": "binary cache URL, for nix copy --to (default: none)",
        "dry_run": "show the closure (paths, size) that would be pushed (default: off)",
    },
)
@clean_exit
def cache_push(c, mode="integrated", name="", url="", dry_run=False):
    """Push the mode's closure to a binary cache (cachix push, or nix copy --to URL)."""
    from nixfly import cache, console
    from nixfly.nix import Nix

    s = settings(c, ROOT, mode=mode, dry_run=dry_run)
    here = runner.here(s)
    console.ok(cache.push(here, Nix(here, s.root), s.mode.flake_attr, s.out_link, name=name, url=url))


# --- deps.*: the ai-server's npm dependencies --------------------------------------------------------------
@task(name="update", help={"dry_run": DRY})
@clean_exit
def deps_update(c, dry_run=False):
    """After ai-server/bun.lock changed: recompute the Nix hash of its node_modules and say what changed."""
    from nixfly import depsupdate  # imported here: `inv --list` stays fast

    s = settings(c, ROOT, dry_run=dry_run)
    depsupdate.update(s, runner.here(s))


# --- preview.*: one app per pull request -------------------------------------------------------------------
PR = "pull request number: the app is nixfly.preview.name, <app>-pr-N (default: the checked-out branch's)"


@task(
    name="deploy",
    default=True,
    help={
        "mode": MODE,
        "pr": PR,
        "dry_run": DRY,
        "skip_build": "use the existing ./result instead of running nix build (default: off)",
        "skip_smoke": "do not run the smoke tests (default: off)",
        "force": "deploy even when the preview runs this closure, config and secrets (default: off)",
        "json": "also print the step summary, with the URL as step `url`, as JSON on stdout (default: off)",
        "builder": "image or nixpacks, as for `inv deploy` (default: nixfly.builder in config, image)",
    },
)
@clean_exit
def preview_deploy(
    c,
    mode="integrated",
    pr="",
    dry_run=False,
    skip_build=False,
    skip_smoke=False,
    force=False,
    json=False,
    builder="",
):
    """Deploy the mode to a preview app of its own (per PR or branch): the whole pipeline, then its URL.

    The same steps as `inv deploy` (build, smoke, bundle, app, volume, secrets, image, deploy, verify) to
    the app nixfly.preview.name names: one machine in the primary region, stopped when idle, a volume
    (nixfly.preview.volume_size_gb) only when the mode mounts one, and a marker saying nixfly made it for
    this PR. Only the secrets nixfly.preview.secrets lists reach it (from .env.preview, else from the
    production bundle). Running it again updates the same app.

    Examples:
      inv preview --pr 12                 # app oneshot-pr-12, prints https://oneshot-pr-12.fly.dev
      inv preview --dry-run               # the current branch's preview, changing nothing
    """
    from nixfly.fly import preview as previews
    from nixfly.target import Options

    s = settings(c, ROOT, mode=mode, dry_run=dry_run, builder=builder)
    options = Options(skip_build=skip_build, skip_smoke=skip_smoke, force=force, json_summary=json)
    previews.deploy(s, runner.here(s), previews.config_of(c), pr=pr, options=options)


@task(name="list", help={"mode": MODE, "json": "print as JSON (default: off)"})
@clean_exit
def preview_list(c, mode="integrated", json=False):
    """List the mode's preview apps (those carrying nixfly's marker) with their PR, age and idle time."""
    from nixfly.fly import preview as previews

    s = settings(c, ROOT, mode=mode)
    previews.list_previews(s, runner.here(s), previews.config_of(c), as_json=json)


@task(name="destroy", help={"mode": MODE, "pr": PR, "dry_run": DRY, "json": "print as JSON (default: off)"})
@clean_exit
def preview_destroy(c, mode="integrated", pr="", dry_run=False, json=False):
    """Destroy a preview app and its volumes, only if nixfly's marker says nixfly made it; gone is fine."""
    from nixfly.fly import preview as previews

    s = settings(c, ROOT, mode=mode, dry_run=dry_run)
    previews.destroy(s, runner.here(s), previews.config_of(c), pr=pr, as_json=json)


@task(
    name="prune",
    help={
        "mode": MODE,
        "older_than": "destroy previews neither created nor deployed for this long: a number and s, m, h, "
        "d or w (default: 7d)",
        "dry_run": DRY,
        "json": "print as JSON (default: off)",
    },
)
@clean_exit
def preview_prune(c, mode="integrated", older_than="7d", dry_run=False, json=False):
    """Destroy every marked preview app of the mode idle for --older-than (apps without the marker stay)."""
    from nixfly.fly import preview as previews

    s = settings(c, ROOT, mode=mode, dry_run=dry_run)
    previews.prune(s, runner.here(s), previews.config_of(c), older_than=older_than, as_json=json)


# --- `inv` alone -------------------------------------------------------------------------------------------
@task(name="map", default=True)
@clean_exit
def show_map(c):
    """Where to start (doctor → bundle → deploy) and every task: what `inv` alone prints."""
    commands.show_map(ns)


ns = Collection(
    show_map,
    deploy,
    scale,
    build,
    bundle,
    secrets,
    doctor,
    status,
    logs,
    releases,
    rollback,
    stop,
    dev,
    clean,
    update,
    sbom,
    diff,
)
ns.add_collection(Collection("apps", apps_create))
ns.add_collection(Collection("volumes", volumes_create))
ns.add_collection(Collection("lock", lock_status, lock_release))
ns.add_collection(Collection("image", image_build, image_push, image_inspect))
ns.add_collection(Collection("cache", cache_use, cache_push))
ns.add_collection(Collection("deps", deps_update))
ns.add_collection(Collection("preview", preview_deploy, preview_list, preview_destroy, preview_prune))
