"""The task bodies that have no one domain call to make: each shows what it did (a table, a line, JSON).

A task whose work is one call makes it itself in tasks.py (``engine.deploy``, ``doctor.report``, a target's
``status``); what is here composes several modules (build then show, a Fly step on its own, clean's checks).
tasks.py imports this module for ``inv --list``: anything heavier than the standard library and ``console``
is imported inside the function that needs it, so listing the tasks loads none of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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


def build(s: Settings, *, fresh: bool, rebuild: bool, show_trace: bool, on: str = "") -> None:
    from nixfly.buildhost import open_build_host
    from nixfly.nix import human_size
    from nixfly.runner import here

    started = time.monotonic()
    with (
        open_build_host(s, here(s), on) as host,
        console.progress(f"nix build .#{s.mode.flake_attr}{host.where}"),
    ):
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


def _fly_step(s: Settings, runner: Runner, name: str, step: Callable[[FlyTarget], Outcome]) -> None:
    """One of the Fly deploy's steps on its own (``inv secrets``, ``apps.create``, ``volumes.create``)."""
    from nixfly.fly import FlyTarget

    fly = FlyTarget(s, runner)
    try:
        outcome = step(fly)
    finally:
        fly.close()
    console.ok(f"{name}: {outcome.status}: {outcome.detail}")


def secrets(s: Settings, *, stage: bool) -> None:
    """Under the app's deploy lock, as a deploy and a rollback are: secrets staged in the middle of a deploy
    would go out with its release (or be overwritten by it) unseen. A held lock refuses, naming its holder."""
    from nixfly import git, lock
    from nixfly.runner import here

    def send(fly: FlyTarget) -> Outcome:
        return fly.stage_secrets(stage=stage)

    runner = here(s)
    if s.dry_run:
        _fly_step(s, runner, "secrets", send)
        return
    revision = git.revision(runner, s.root)
    with lock.held(s.state_dir, s.app, revision, f"secrets --mode {s.mode.name}"):
        _fly_step(s, runner, "secrets", send)


def create_app(s: Settings) -> None:
    from nixfly.runner import here

    _fly_step(s, here(s), "app", lambda fly: fly.ensure_app())


def create_volume(s: Settings) -> None:
    from nixfly.runner import here

    _fly_step(s, here(s), "volume", lambda fly: fly.ensure_volume())


def releases(s: Settings, *, as_json: bool, target: str = "fly") -> None:
    """Fly's releases with their receipts, or each host's generations with theirs."""
    from nixfly.engine import opened
    from nixfly.runner import here

    with opened(s, here(s), target) as chosen:
        chosen.releases(as_json=as_json)


def rollback(s: Settings, *, to: int, target: str = "fly", as_json: bool = False) -> None:
    """The target's rollback; a group's per-host table after it (also when it failed), and with
    ``as_json`` one JSON document on stdout: ok, detail, and each host's before/after/result."""
    from nixfly.engine import opened
    from nixfly.errors import NixflyError
    from nixfly.runner import here

    with opened(s, here(s), target) as chosen:
        try:
            detail = chosen.rollback(to)
        except NixflyError as exc:
            _rollback_report(chosen, as_json, ok=False, detail=exc.line())
            raise
        _rollback_report(chosen, as_json, ok=True, detail=detail)
        console.ok(detail)


def _rollback_report(chosen: Target, as_json: bool, *, ok: bool, detail: str) -> None:
    table = getattr(chosen, "rollback_table", None)  # a group's (GroupTarget); other targets have one host
    if table is not None:
        table.show()
    if as_json:
        from nixfly.console import print_json

        rows = table.as_json()["rows"] if table is not None else []
        print_json({"ok": ok, "detail": detail, "hosts": rows})


def clean(root: Path, state_dir: Path, *, dry_run: bool, state: bool) -> None:
    """Remove build outputs; with ``state`` also nixfly's records — unless something still needs them."""
    import shutil

    from nixfly.runner import Runner

    targets = [*sorted(root.glob("result*")), root / "web" / "_build", root / ".pytest_cache"]
    if state:
        # Settings are not read here (clean works when invoke.yaml is wrong): the runner is made from the
        # flags, as ``runner.here`` makes every other task's.
        _refuse_clean_state(root, state_dir, Runner(dry_run=dry_run, cwd=root))
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


def _refuse_clean_state(root: Path, state_dir: Path, runner: Runner) -> None:
    """The state directory holds the live deploy locks, and the pidfiles and profile generations (GC roots)
    of local releases: deleting it under a deploy or a running release would orphan them."""
    from nixfly import lock
    from nixfly.errors import NixflyError
    from nixfly.hosts import service
    from nixfly.hosts.host import Host

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
    local = Host("local", runner, PurePosixPath(state_dir.resolve()) / "local")
    for pidfile in sorted((state_dir / "local" / "run").glob("*.pid")):
        pid = service.pid(local, PurePosixPath(pidfile.resolve()))
        if pid:
            raise NixflyError(
                f"the local release of {pidfile.stem} is running (pid {pid}): {shown} holds its pidfile "
                "and its profile generations",
                "stop it first: `inv stop --target local` (with the --mode that deployed it)",
            )


def write_sbom(s: Settings, *, release: int, output: str, as_json: bool) -> None:
    """``inv sbom``: the CycloneDX document of ``./result`` (or of local release ``release``), written to
    ``output`` or printed, and a one-line summary."""
    from nixfly import manifests, sbom
    from nixfly.console import print_json
    from nixfly.files import write_atomic
    from nixfly.runner import here

    store_path = manifests.release_path(s, release) if release else manifests.working_tree(s)
    manifest = sbom.manifest_of(here(s), store_path)
    document = sbom.to_json(manifest)
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


def closure_diff(s: Settings, *, old: str, new: str, as_json: bool, target: str = "") -> None:
    """Two closures' diff, read here (releases of the local target's record); with ``target``, two of that
    target's releases (or one and the working tree), read where it keeps them."""
    from nixfly import manifests, plandiff
    from nixfly.engine import opened
    from nixfly.runner import here

    runner = here(s)
    if target:
        with opened(s, runner, target) as chosen:
            chosen.diff(old, new, as_json=as_json)
        return
    before = manifests.resolve(s, runner, old) if old else manifests.default_from(s, runner)
    after = manifests.resolve(s, runner, new or manifests.working_tree(s))
    plandiff.show(before, after, as_json=as_json)


def _image(s: Settings, runner: Runner, on: str) -> Built:
    """The mode's image tarball, built here or ``on`` a build host and copied here (pushes start here)."""
    from nixfly import image
    from nixfly.buildhost import open_build_host

    with open_build_host(s, runner, on) as host:
        return image.build_on(host, s.mode.image_attr, f"{s.mode.out_link}-image", runner)


def image_build(s: Settings, *, on: str = "") -> None:
    from nixfly import image
    from nixfly.nix import human_size
    from nixfly.runner import here

    built = _image(s, here(s), on)
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
    from nixfly.runner import here

    runner = here(s)
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
    from nixfly.runner import here
    from nixfly.skopeo import Skopeo

    runner = here(s)
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
