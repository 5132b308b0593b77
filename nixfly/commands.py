"""What each ``inv`` task does, one function per task; tasks.py only parses flags and calls these.

Imports of anything heavier than the standard library happen inside the functions, so ``inv --list`` stays
fast.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nixfly import console
from nixfly.config import Settings
from nixfly.errors import NixflyError
from nixfly.runner import Runner

if TYPE_CHECKING:
    from nixfly.nix import Built
    from nixfly.remote import RemoteRunner


def runner_for(s: Settings) -> Runner:
    return Runner(dry_run=s.dry_run, cwd=s.root)


def deploy(s: Settings, *, target: str, on: str, port: int, **options: bool) -> None:
    from nixfly.deploy import Deployment, Options
    from nixfly.targets import parse_target

    if parse_target(target).kind != "fly":
        from nixfly.targets.deploy import deploy_pipeline

        deploy_pipeline(s, target, Options(**options), on=on, port=port)
        return
    builder = _builder(s, on)
    try:
        Deployment(s, runner_for(s), Options(**options), builder=builder).run()
    finally:
        if builder is not None:
            builder.close()


def _builder(s: Settings, on: str) -> RemoteRunner | None:
    """A runner for the ``--on`` build host; nixfly.remote is imported only then (it brings in Fabric)."""
    if not on:
        return None
    from nixfly.buildhost import remote_runner

    return remote_runner(s, on)


def build(s: Settings, *, fresh: bool, rebuild: bool, show_trace: bool, on: str = "") -> None:
    from nixfly.nix import Nix, human_size

    if on and (fresh or rebuild or show_trace):
        raise NixflyError(
            "--fresh, --rebuild and --show-trace apply to builds on this machine",
            f"drop --on {on}, or run them there: ssh {on.split(':')[0]} then inv build …",
        )
    started = time.monotonic()
    builder = _builder(s, on)
    with console.progress(f"nix build .#{s.mode.flake_attr}" + (f" on {on}" if on else "")):
        if builder is not None:
            from nixfly.buildhost import build_on

            try:
                built = build_on(s, builder)
            finally:
                builder.close()
        else:
            built = Nix(runner_for(s), s.root).build(
                s.mode.flake_attr, s.out_link, fresh=fresh, rebuild=rebuild, show_trace=show_trace
            )
    if s.dry_run:
        return
    console.table(
        f".#{s.mode.flake_attr}",
        ("store path", "closure", "output", "time"),
        [
            (
                built.store_path,
                human_size(built.closure_size),
                f"{s.out_link.name}{' (up to date)' if built.cached else ''}",
                f"{time.monotonic() - started:.1f}s",
            )
        ],
    )
    print(built.store_path)


def bundle(s: Settings) -> None:
    from nixfly import bundle as gather

    runner = runner_for(s)
    warning = gather.check_ignored(s.root, s.env_file, runner)
    if warning:
        console.warn(warning)
    found = gather.gather(s.root, s.dotenv, runner)
    kept = gather.keep_previous(s.env_file, found)
    changed = gather.write(s.env_file, found, dry_run=s.dry_run)
    rows = [(key, found.sources.get(key, "")) for key in found.values]
    rows += [(key, "MISSING (required)") for key in found.missing(s.mode.required_secrets)]
    verb = "would write" if s.dry_run and changed else "wrote" if changed else "unchanged"
    console.table(f"{s.env_file.name}: {verb} (mode 0600)", ("key", "source"), rows)
    if kept:
        console.warn(f"kept {', '.join(kept)} from the previous {s.env_file.name}: no source has them now")


def secrets(s: Settings, *, stage: bool) -> None:
    from nixfly.deploy import Deployment, Options

    outcome = Deployment(s, runner_for(s), Options(stage_secrets=stage)).stage_secrets()
    console.ok(f"secrets: {outcome.status}: {outcome.detail}")


def create_app(s: Settings) -> None:
    from nixfly.deploy import Deployment

    outcome = Deployment(s, runner_for(s)).ensure_app()
    console.ok(f"app: {outcome.status}: {outcome.detail}")


def create_volume(s: Settings) -> None:
    from nixfly.deploy import Deployment

    outcome = Deployment(s, runner_for(s)).ensure_volume()
    console.ok(f"volume: {outcome.status}: {outcome.detail}")


def doctor(s: Settings) -> None:
    from nixfly import doctor as checks

    checks.report(s, runner_for(s))


def status(s: Settings, *, as_json: bool, target: str = "fly") -> None:
    from nixfly.cli import print_json
    from nixfly.flyctl import Flyctl, parse_machine

    if target != "fly":
        from dataclasses import asdict

        from nixfly import targets

        found = targets.status(s, target)
        if as_json:
            print_json(asdict(found))
        return

    data = Flyctl(runner_for(s), s.flyctl).status(s.app)
    if as_json:
        print_json(data)
        return
    machines = [parse_machine(m) for m in data.get("Machines") or []]
    console.table(
        f"{s.app}: {data.get('Status', '?')}, release v{data.get('Version', 0)}, {data.get('Hostname', '')}",
        ("machine", "state", "region", "image", "checks"),
        [
            (m.id, m.state, m.region, m.image, ", ".join(f"{n}={st}" for n, st in m.checks) or "-")
            for m in machines
        ],
    )


def releases(s: Settings, *, as_json: bool) -> None:
    from dataclasses import asdict

    from nixfly.cli import print_json
    from nixfly.flyctl import Flyctl

    found = Flyctl(runner_for(s), s.flyctl).releases(s.app)
    if as_json:
        print_json([asdict(r) for r in found])
        return
    console.table(
        f"{s.app}: releases",
        ("version", "status", "image", "created"),
        [(f"v{r.version}", r.status, r.image_ref, r.created_at) for r in found],
    )


def logs(s: Settings, *, timeout: float, target: str = "fly", lines: int = 100) -> None:
    from nixfly.flyctl import Flyctl

    if target != "fly":
        from nixfly import targets

        print(targets.logs(s, target, lines), end="")
        return

    try:
        text = Flyctl(runner_for(s), s.flyctl).logs(s.app, timeout=timeout)
    except NixflyError as exc:
        if "did not finish within" in exc.message:
            console.note(f"no (more) logs within {timeout:g}s")
            return
        raise
    print(text, end="")


def rollback(s: Settings, *, to: int, target: str = "fly") -> None:
    from nixfly import git, lock
    from nixfly.deploy import Deployment
    from nixfly.flyctl import Flyctl

    if target != "fly":
        from nixfly import targets

        console.ok(targets.rollback(s, target, to).detail)
        return

    runner = runner_for(s)
    found = Flyctl(runner, s.flyctl).releases(s.app)
    good = [r for r in found if r.status in ("complete", "succeeded") and r.image_ref]
    if not found:
        raise NixflyError(f"{s.app} has no releases", "deploy first: `inv deploy`")
    current = found[0]
    if to:
        chosen = next((r for r in found if r.version == to), None)
        if chosen is None:
            raise NixflyError(f"{s.app} has no release v{to}", "`inv releases` lists them")
        if not chosen.image_ref:
            raise NixflyError(f"release v{to} has no image to redeploy")
    else:
        older = [r for r in good if r.version < current.version]
        if not older:
            raise NixflyError(
                f"{s.app} has no earlier healthy release to go back to", "`inv releases` lists them"
            )
        chosen = older[0]
    console.say(f"rolling {s.app} back from v{current.version} to v{chosen.version} ({chosen.image_ref})")
    if s.dry_run:
        Deployment(s, runner).fly.deploy(s.app, s.fly_config, image=chosen.image_ref, strategy="immediate")
        return
    with lock.held(s.state_dir, s.app, git.revision(runner, s.root), f"rollback --to {chosen.version}"):
        outcome = Deployment(s, runner).rollback_to(chosen)
    console.ok(outcome.detail)


def stop(s: Settings, *, target: str) -> None:
    from nixfly import targets

    console.ok(targets.stop(s, target))


def lock_status(s: Settings) -> None:
    from nixfly import lock

    holder = lock.read(lock.lock_path(s.state_dir, s.app))
    if holder is None:
        console.ok(f"{s.app}: not locked")
    elif lock.is_stale(holder):
        console.warn(
            f"{s.app}: STALE lock of {holder.describe()} (process gone): `inv lock.release` removes it"
        )
    else:
        console.say(f"{s.app}: locked by {holder.describe()} running `{holder.command}`")


def lock_release(s: Settings, *, force: bool) -> None:
    from nixfly import lock

    holder = lock.release(s.state_dir, s.app, force=force)
    console.ok(f"{s.app}: released lock of {holder.describe()}" if holder else f"{s.app}: was not locked")


def dev(s: Settings, *, web_port: int, ai_port: int) -> int:
    from nixfly import dev as both

    return both.run(runner_for(s), s.root, web_port, ai_port)


def clean(root: Path, *, dry_run: bool, state: bool) -> None:
    targets = [*sorted(root.glob("result*")), root / "web" / "_build", root / ".pytest_cache"]
    if state:
        targets.append(root / ".nixfly")
    for path in targets:
        if not (path.exists() or path.is_symlink()):
            continue
        if dry_run:
            console.say(f"[dry-run] would remove {path.relative_to(root)}")
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            console.note(f"removed {path.relative_to(root)}/")
        else:
            path.unlink()
            console.note(f"removed {path.relative_to(root)}")


def update(s: Settings) -> None:
    from nixfly.nix import Nix

    Nix(runner_for(s), s.root).flake_update()
    console.ok("flake.lock updated: rebuild and smoke before deploying (`nox -s smoke`)")


def _image(s: Settings, runner: Runner, on: str) -> Built:
    """The mode's image tarball, built here or ``on`` a build host and copied here (pushes start here)."""
    from nixfly import image
    from nixfly.nix import Nix

    out_link = f"{s.mode.out_link}-image"
    builder = _builder(s, on)
    if builder is None:
        return image.build(Nix(runner, s.root), s.mode.image_attr, s.root / out_link)
    from nixfly.buildhost import build_on
    from nixfly.targets import closure

    try:
        built = build_on(s, builder, s.mode.image_attr, out_link)
        if built.store_path:
            closure.copy(runner, built.store_path, source=builder.endpoint)
        return built
    finally:
        builder.close()


def image_build(s: Settings, *, on: str = "") -> None:
    from nixfly import image
    from nixfly.nix import human_size

    built = _image(s, runner_for(s), on)
    if s.dry_run:
        return
    size = Path(built.store_path).stat().st_size
    console.table(
        f".#{s.mode.image_attr}",
        ("image tarball", "size", "tag"),
        [(built.store_path, human_size(size), image.tag_for(built.store_path))],
    )
    print(built.store_path)


def image_push(s: Settings, *, on: str = "") -> None:
    from nixfly import image
    from nixfly.flyctl import Flyctl

    runner = runner_for(s)
    built = _image(s, runner, on)
    if s.dry_run:
        console.say(f"[dry-run] would push .#{s.mode.image_attr} to {s.registry}/{s.app}:nix-<store hash>")
        return
    ref = image.reference(s.registry, s.app, built.store_path)
    pushed = image.push(runner, built.store_path, ref, Flyctl(runner, s.flyctl).token())
    console.ok(f"{'pushed' if pushed.uploaded else 'already in the registry, nothing uploaded'}: {ref}")
    print(ref)


def _image_root(archive: str, s: Settings) -> str:
    """The mode's package the image was built from (its out-link), to compare image and closure sizes."""
    return str(s.out_link.resolve()) if s.out_link.exists() else archive


def image_inspect(s: Settings) -> None:
    from nixfly import image
    from nixfly.nix import Nix, human_size
    from nixfly.skopeo import Skopeo

    runner = runner_for(s)
    nix = Nix(runner, s.root)
    built = image.build(nix, s.mode.image_attr, s.root / f"{s.mode.out_link}-image")
    if s.dry_run:
        return
    found = image.layers(built.store_path)
    total = sum(size for _, size in found)
    console.table(
        f"{built.store_path}: {len(found)} layers, {human_size(total)} "
        f"(closure of .#{s.mode.flake_attr}: {human_size(nix.sizes(_image_root(built.store_path, s))[1])})",
        ("layer", "size"),
        [(name, human_size(size)) for name, size in found],
    )
    config = Skopeo(runner).config_of_archive(built.store_path).get("config", {})
    console.table(
        "image config",
        ("key", "value"),
        [
            ("Cmd", " ".join(config.get("Cmd") or [])),
            ("Env", ", ".join(e.split("=", 1)[0] for e in config.get("Env") or [])),
            ("ExposedPorts", ", ".join(config.get("ExposedPorts") or {})),
            ("WorkingDir", config.get("WorkingDir", "")),
        ],
    )


def cache_use(s: Settings, *, name: str, url: str, key: str) -> None:
    from nixfly import cache

    console.ok(cache.use(runner_for(s), name=name, url=url, key=key))


def cache_push(s: Settings, *, name: str, url: str) -> None:
    from nixfly import cache
    from nixfly.nix import Nix

    runner = runner_for(s)
    console.ok(cache.push(runner, Nix(runner, s.root), s.mode.flake_attr, s.out_link, name=name, url=url))
