"""What each ``inv`` task does, one function per task; tasks.py only parses flags and calls these.

tasks.py imports this module for ``inv --list``: anything heavier than the standard library and ``console``
is imported inside the function that needs it, so listing the tasks loads none of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from nixfly import console

if TYPE_CHECKING:
    from invoke import Collection

    from nixfly.config import Settings
    from nixfly.fly import FlyTarget
    from nixfly.nix import Built
    from nixfly.pipeline import Outcome
    from nixfly.runner import Runner
    from nixfly.target import Target


def runner_for(s: Settings) -> Runner:
    from nixfly.runner import Runner

    return Runner(dry_run=s.dry_run, cwd=s.root)


@contextmanager
def target_of(s: Settings, text: str) -> Iterator[Target]:
    """The ``--target`` of a task, closed (its SSH connection, its reads) when the task is done."""
    from nixfly.engine import open_target

    chosen = open_target(s, text)
    try:
        yield chosen
    finally:
        chosen.close()


def deploy(s: Settings, *, target: str, on: str, port: int, batch: int = 1, **options: bool) -> None:
    from nixfly import engine
    from nixfly.target import Options, check_batch

    check_batch(s, target, batch)
    engine.deploy(s, target, Options(batch=batch, **options), on=on, port=port)


def build(s: Settings, *, fresh: bool, rebuild: bool, show_trace: bool, on: str = "") -> None:
    from nixfly.buildhost import open_build_host
    from nixfly.nix import human_size

    started = time.monotonic()
    with open_build_host(s, on) as host, console.progress(f"nix build .#{s.mode.flake_attr}{host.where}"):
        built = host.build(
            s.mode.flake_attr, s.mode.out_link, fresh=fresh, rebuild=rebuild, show_trace=show_trace
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
                f"{built.out_link.name}{' (up to date)' if built.cached else ''}",
                f"{time.monotonic() - started:.1f}s",
            )
        ],
    )
    print(built.store_path)


def bundle(s: Settings) -> None:
    from nixfly import bundle as gather

    result = gather.refresh(s.root, s.dotenv, s.env_file, runner_for(s), dry_run=s.dry_run)
    rows = [(key, result.sources.get(key, "")) for key in result.values]
    rows += [(key, "MISSING (required)") for key in result.missing(s.mode.required_secrets)]
    verb = "would write" if s.dry_run and result.changed else "wrote" if result.changed else "unchanged"
    why = f" ({result.reason})" if result.changed else ""
    console.table(f"{s.env_file.name}: {verb}{why} (mode 0600)", ("key", "source"), rows)
    for warning in result.warnings:
        console.warn(warning)


def _fly_step(s: Settings, name: str, step: Callable[[FlyTarget], Outcome]) -> None:
    """One of the Fly deploy's steps on its own (``inv secrets``, ``apps.create``, ``volumes.create``)."""
    from nixfly.fly import FlyTarget

    fly = FlyTarget(s)
    try:
        outcome = step(fly)
    finally:
        fly.close()
    console.ok(f"{name}: {outcome.status}: {outcome.detail}")


def secrets(s: Settings, *, stage: bool) -> None:
    """Under the app's deploy lock, as a deploy and a rollback are: secrets staged in the middle of a deploy
    would go out with its release (or be overwritten by it) unseen. A held lock refuses, naming its holder."""
    from nixfly import git, lock

    def send(fly: FlyTarget) -> Outcome:
        return fly.stage_secrets(stage=stage)

    if s.dry_run:
        _fly_step(s, "secrets", send)
        return
    revision = git.revision(runner_for(s), s.root)
    with lock.held(s.state_dir, s.app, revision, f"secrets --mode {s.mode.name}"):
        _fly_step(s, "secrets", send)


def scale(s: Settings, *, counts: str, destroy_volumes: bool, new_volumes: bool, json_summary: bool) -> None:
    from nixfly.config import region_counts
    from nixfly.errors import NixflyError
    from nixfly.fly import scale as machines_per_region

    wanted = region_counts(counts)
    if not wanted:
        raise NixflyError("no REGION=COUNT given", f"e.g. `inv scale --mode {s.mode.name} iad=2,ams=1`")
    machines_per_region.run(
        s,
        wanted,
        destroy_volumes=destroy_volumes,
        new_volumes=new_volumes,
        json_summary=json_summary,
    )


def create_app(s: Settings) -> None:
    _fly_step(s, "app", lambda fly: fly.ensure_app())


def create_volume(s: Settings) -> None:
    _fly_step(s, "volume", lambda fly: fly.ensure_volume())


def doctor(s: Settings) -> None:
    from nixfly import doctor as checks

    checks.report(s, runner_for(s))


def status(s: Settings, *, as_json: bool, target: str = "fly") -> None:
    with target_of(s, target) as chosen:
        chosen.status(as_json=as_json)


def releases(s: Settings, *, as_json: bool) -> None:
    from dataclasses import asdict

    from nixfly.console import print_json
    from nixfly.fly import receipts
    from nixfly.flyctl import Flyctl

    runner = runner_for(s)
    fly = Flyctl(runner, s.flyctl)
    found = fly.releases(s.app)
    kept = receipts.read_all(runner, fly, found, f"{s.registry}/{s.app}")
    if as_json:
        print_json([{**asdict(r), "receipt": asdict(k) if (k := kept[r.version]) else None} for r in found])
        return
    console.table(
        f"{s.app}: releases",
        ("version", "status", "image", "created", "receipt"),
        [
            (f"v{r.version}", r.status, r.image_ref, r.created_at, receipts.summary(kept[r.version]))
            for r in found
        ],
    )


def logs(s: Settings, *, timeout: float, target: str = "fly", lines: int = 100) -> None:
    with target_of(s, target) as chosen:
        print(chosen.logs(lines=lines, timeout=timeout), end="")


def rollback(s: Settings, *, to: int, target: str = "fly", as_json: bool = False) -> None:
    """The target's rollback; a group's per-host table after it (also when it failed), and with
    ``as_json`` one JSON document on stdout: ok, detail, and each host's before/after/result."""
    with target_of(s, target) as chosen:
        from nixfly.errors import NixflyError

        try:
            detail = chosen.rollback(to)
        except NixflyError as exc:
            _rollback_report(chosen, as_json, ok=False, detail=exc.line())
            raise
        _rollback_report(chosen, as_json, ok=True, detail=detail)
        console.ok(detail)


def _rollback_report(chosen: Target, as_json: bool, *, ok: bool, detail: str) -> None:
    table = getattr(chosen, "rollback_table", None)  # a group's (FleetTarget); other targets have one host
    if table is not None:
        table.show()
    if as_json:
        from nixfly.console import print_json

        rows = table.as_json()["rows"] if table is not None else []
        print_json({"ok": ok, "detail": detail, "hosts": rows})


def stop(s: Settings, *, target: str) -> None:
    with target_of(s, target) as chosen:
        console.ok(chosen.stop())


def lock_status(s: Settings, *, target: str = "fly") -> None:
    from nixfly import lock
    from nixfly.target import parse_target

    spec = parse_target(target, s.targets)
    if spec.kind != "fly":
        from nixfly.hosts import FleetTarget

        hosts = FleetTarget(s, spec)
        try:
            hosts.lock_status()
        finally:
            hosts.close()
        return
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


def lock_release(s: Settings, *, force: bool, target: str = "fly") -> None:
    from nixfly import lock
    from nixfly.target import parse_target

    spec = parse_target(target, s.targets)
    if spec.kind != "fly":
        from nixfly.hosts import FleetTarget

        hosts = FleetTarget(s, spec)
        try:
            hosts.lock_release(force=force)
        finally:
            hosts.close()
        return
    holder = lock.release(s.state_dir, s.app, force=force)
    console.ok(f"{s.app}: released lock of {holder.describe()}" if holder else f"{s.app}: was not locked")


def dev(s: Settings, *, web_port: int, ai_port: int) -> int:
    from nixfly import dev as both

    return both.run(runner_for(s), s.root, web_port, ai_port)


def clean(root: Path, state_dir: Path, *, dry_run: bool, state: bool) -> None:
    """Remove build outputs; with ``state`` also nixfly's records — unless something still needs them."""
    import shutil

    targets = [*sorted(root.glob("result*")), root / "web" / "_build", root / ".pytest_cache"]
    if state:
        _refuse_clean_state(root, state_dir)
        targets.append(state_dir)
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


def _refuse_clean_state(root: Path, state_dir: Path) -> None:
    """The state directory holds the live deploy locks, and the pidfiles and profile generations (GC roots)
    of local releases: deleting it under a deploy or a running release would orphan them."""
    from nixfly import lock
    from nixfly.errors import NixflyError
    from nixfly.hosts import service
    from nixfly.hosts.host import Host
    from nixfly.runner import Runner

    shown = state_dir.relative_to(root) if state_dir.is_relative_to(root) else state_dir
    if not state_dir.resolve().is_relative_to(root.resolve()) or state_dir.resolve() == root.resolve():
        raise NixflyError(
            f"nixfly.state_dir {shown} is not a directory inside the checkout: `inv clean --state` "
            "removes nixfly's records only there",
            "set nixfly.state_dir in invoke.yaml to a directory of the checkout",
        )
    if not state_dir.is_dir() or state_dir.is_symlink():
        return
    for path in sorted(state_dir.glob("deploy-*.lock")):
        holder = lock.read(path)
        if holder is not None and not holder.damaged and not lock.is_stale(holder):
            raise NixflyError(
                f"a deploy is running: {path.name} is held by {holder.describe()}",
                "wait for it to finish, then run `inv clean --state` again",
            )
    local = Host("local", Runner(cwd=root), PurePosixPath(state_dir.resolve()) / "local")
    for pidfile in sorted((state_dir / "local" / "run").glob("*.pid")):
        pid = service.pid(local, PurePosixPath(pidfile.resolve()))
        if pid:
            raise NixflyError(
                f"the local release of {pidfile.stem} is running (pid {pid}): {shown} holds its pidfile "
                "and its profile generations",
                "stop it first: `inv stop --target local` (with the --mode that deployed it)",
            )


def update(s: Settings) -> None:
    from nixfly.nix import Nix

    Nix(runner_for(s), s.root).flake_update()
    console.ok("flake.lock updated: rebuild and smoke before deploying (`nox -s smoke`)")


def sbom(s: Settings, *, release: int, output: str, as_json: bool) -> None:
    from nixfly import manifests
    from nixfly import sbom as cyclonedx
    from nixfly.console import print_json
    from nixfly.files import write_atomic

    store_path = manifests.release_path(s, release) if release else manifests.working_tree(s)
    manifest = cyclonedx.manifest_of(runner_for(s), store_path)
    document = cyclonedx.to_json(manifest)
    if output:
        write_atomic(s.root / output, document + "\n", mode=0o644)
    packages = {kind: sum(p.ecosystem == kind for p in manifest.packages) for kind in ("npm", "hex")}
    if as_json:
        print_json(
            {
                "store_path": store_path,
                "store_paths": len(manifest.paths),
                "packages": packages,
                "output": output,
                "bytes": len(document.encode()) + 1,
            }
        )
    elif not output:
        print(document)
    counts = ", ".join(f"{n} {kind}" for kind, n in packages.items())
    console.ok(
        f"SBOM of {store_path}: {len(manifest.paths)} store paths, {counts} packages"
        + (f" → {output}" if output else "")
    )


def closure_diff(s: Settings, *, old: str, new: str, as_json: bool) -> None:
    from nixfly import manifests
    from nixfly.closurediff import diff
    from nixfly.console import print_json

    runner = runner_for(s)
    before = manifests.resolve(s, runner, old) if old else manifests.default_from(s, runner)
    after = manifests.resolve(s, runner, new or manifests.working_tree(s))
    changes = diff(before, after)
    if as_json:
        print_json(changes.as_json())
        return
    console.say(f"{before.root} → {after.root}")
    print("\n".join(changes.lines()))


def _image(s: Settings, runner: Runner, on: str) -> Built:
    """The mode's image tarball, built here or ``on`` a build host and copied here (pushes start here)."""
    from nixfly import image
    from nixfly.buildhost import open_build_host

    with open_build_host(s, on) as host:
        return image.build_on(host, s.mode.image_attr, f"{s.mode.out_link}-image", runner)


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
    pushed = image.push(runner, built.store_path, ref, Flyctl(runner, s.flyctl).registry_password())
    console.ok(f"{'pushed' if pushed.uploaded else 'already in the registry, nothing uploaded'}: {ref}")
    print(ref)


def _image_root(archive: str, s: Settings) -> str:
    """The mode's package the image was built from (its out-link), to compare image and closure sizes."""
    return str(s.out_link.resolve()) if s.out_link.exists() else archive


def image_inspect(s: Settings, *, as_json: bool = False) -> None:
    from dataclasses import asdict

    from nixfly import image
    from nixfly.console import print_json
    from nixfly.fly import receipts
    from nixfly.flyctl import Flyctl
    from nixfly.nix import Nix, human_size
    from nixfly.skopeo import Skopeo

    runner = runner_for(s)
    nix = Nix(runner, s.root)
    built = _image(s, runner, "")
    if s.dry_run:
        return
    found = image.layers(built.store_path)
    total = sum(size for _, size in found)
    closure = nix.sizes(_image_root(built.store_path, s))[1]
    config = Skopeo(runner).config_of_archive(built.store_path).get("config", {})
    shown = {
        "Cmd": " ".join(config.get("Cmd") or []),
        "Env": ", ".join(
            e.split("=", 1)[0] for e in config.get("Env") or []
        ),  # names only: values may be secret
        "ExposedPorts": ", ".join(config.get("ExposedPorts") or {}),
        "WorkingDir": config.get("WorkingDir", ""),
    }
    travel = receipts.travels(
        runner, Flyctl(runner, s.flyctl), s.app, image.reference(s.registry, s.app, built.store_path)
    )
    if as_json:
        print_json(
            {
                "store_path": built.store_path,
                "layers": [{"name": name, "size": size} for name, size in found],
                "size": total,
                "closure_size": closure,
                "config": shown,
                "manifest": asdict(travel),
            }
        )
        return
    console.table(
        f"{built.store_path}: {len(found)} layers, {human_size(total)} "
        f"(closure of .#{s.mode.flake_attr}: {human_size(closure)})",
        ("layer", "size"),
        [(name, human_size(size)) for name, size in found],
    )
    console.table("image config", ("key", "value"), list(shown.items()))

    # Tags without the repository (named once): a full reference would not fit a 120-column table.
    def tag(ref: str) -> str:
        return ref.removeprefix(f"{travel.repository}:")

    rows = [
        ("repository", travel.repository),
        ("image tag", tag(travel.image_tag)),
        ("image digest", travel.image_digest or "not in the registry"),
    ]
    for kept in travel.receipts:
        rows.append((f"v{kept['release']}'s receipt tag", tag(str(kept["ref"]))))
        rows.append((f"v{kept['release']}'s receipt digest", str(kept["digest"]) or "not kept"))
    rows.append(("next release's receipt tag", tag(travel.next)))
    if travel.unknown:
        rows.append(("unknown", travel.unknown))
    console.table("where its manifest (SBOM) and receipt travel", ("what", "where"), rows)


def cache_use(s: Settings, *, name: str, url: str, key: str) -> None:
    from nixfly import cache

    console.ok(cache.use(runner_for(s), name=name, url=url, key=key))


def cache_push(s: Settings, *, name: str, url: str) -> None:
    from nixfly import cache
    from nixfly.nix import Nix

    runner = runner_for(s)
    console.ok(cache.push(runner, Nix(runner, s.root), s.mode.flake_attr, s.out_link, name=name, url=url))


START_HERE = """\
nixfly: build the Nix flake (web + ai-server), smoke-test that closure, deploy it to Fly.io.

Start here:
  1. inv doctor     every precondition of a deploy, as a table (nix, flakes, flyctl login, configs)
  2. inv bundle     credentials from the environment and .env into .env.fly (0600, git-ignored)
  3. inv deploy     build, smoke-test, deploy, verify, roll back if unhealthy
                    (no Fly account yet? inv deploy --target local runs it all on this machine)
  Before a release: nox -s smoke (builds ./result and runs tests/smoke against it)

Every task (inv --help TASK for its flags and examples; docs/ for the rest):"""


def show_map(ns: Collection) -> None:
    """``inv`` alone: where to start, then every task with the first line of its docstring."""
    names = sorted((n for n in ns.task_names if n != "map"), key=lambda name: ("." in name, name))
    width = max(len(name) for name in names)
    print(START_HERE)
    for name in names:
        doc = (ns[name].__doc__ or "").strip().splitlines()
        print(f"  {name.ljust(width)}  {doc[0] if doc else ''}")
