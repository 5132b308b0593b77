"""Fly releases' receipts in the registry: pushed after verify, read back by any checkout.

The artifact sits in the app's own repository (``receipt.artifact_ref``), so the credentials that push and
pull the image are the ones that write and read it; reading one receipt is one ``skopeo inspect``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from nixfly import console
from nixfly.errors import NixflyError
from nixfly.flyctl import REGISTRY_USER, Flyctl, FlyRelease
from nixfly.futures import wait_all
from nixfly.receipt import (
    LAYOUT_NAME,
    Receipt,
    artifact_ref,
    from_json,
    layout,
    private_dir,
    read_layout,
    tag_for,
)
from nixfly.runner import Runner
from nixfly.sbom import Manifest
from nixfly.sbom import from_json as sbom_from_json
from nixfly.skopeo import Skopeo, auth_file, registry_host


def push(runner: Runner, password: str, receipt: Receipt, sbom: str, repository: str) -> str:
    """Push ``receipt`` (and the release's SBOM) beside its image; returns where it went. ``repository``:
    the app's repository in nixfly's registry, for an image deployed by tag (``artifact_ref``)."""
    ref = artifact_ref(receipt.image, receipt.release, repository)
    with (
        auth_file(registry_host(ref), REGISTRY_USER, password) as auth,
        layout(receipt.to_json(), sbom) as oci,
    ):
        Skopeo(runner).push_layout(oci, LAYOUT_NAME, ref, auth)
    return ref


def read(runner: Runner, password: str, release: FlyRelease, repository: str) -> Receipt | None:
    """Release ``release``'s receipt, or None when none is kept (deployed by hand, or before receipts)."""
    if not kept_for(release):
        return None
    ref = artifact_ref(release.image_ref, release.version, repository)
    with auth_file(registry_host(ref), REGISTRY_USER, password) as auth:
        text = Skopeo(runner).config_blob(ref, auth)
    return None if text is None else from_json(text, ref)


def read_whole(fly: Flyctl, release: FlyRelease, repository: str) -> tuple[Receipt, Manifest] | None:
    """Release ``release``'s receipt and the manifest of what it runs (its SBOM), in one pull of the
    artifact; None when it has none. What the plan's diff compares against (``Observation``)."""
    if not kept_for(release):
        return None
    ref = artifact_ref(release.image_ref, release.version, repository)
    with auth_file(registry_host(ref), REGISTRY_USER, fly.registry_password()) as auth, private_dir() as oci:
        if not Skopeo(fly.runner).pull_layout(ref, oci / "layout", LAYOUT_NAME, auth):
            return None
        text, document = read_layout(oci / "layout")
    return from_json(text, ref), sbom_from_json(document, ref)


def kept_for(release: FlyRelease) -> bool:
    """Whether nixfly keeps receipts for how ``release`` was deployed: by digest (nixfly's image) or by a
    flyctl deployment tag (``--builder nixpacks``; imgsrc/docker.go ``NewDeploymentTag``)."""
    tag = release.image_ref.rpartition(":")[2]
    return "@" in release.image_ref or tag.startswith("deployment-")


def read_all(
    runner: Runner, fly: Flyctl, releases: list[FlyRelease], repository: str
) -> dict[int, Receipt | None]:
    """Each release's receipt, read at once (one round trip each, in parallel): ``inv releases``. The
    registry is asked only when some release was deployed by nixfly."""
    if not any(kept_for(r) for r in releases):
        return {r.version: None for r in releases}
    password = fly.registry_password()
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nixfly-receipts")
    try:
        found = {r.version: pool.submit(read, runner, password, r, repository) for r in releases}
        wait_all(found.values())  # in slices: one unbounded wait could sleep through a Ctrl-C
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    kept: dict[int, Receipt | None] = {}
    for release in releases:
        try:
            kept[release.version] = found[release.version].result()
        except NixflyError as exc:
            if "@" in release.image_ref:
                raise
            # nixpacks: flyctl pushed with its own login; nixfly may not reach the registry (no skopeo).
            console.warn(f"v{release.version}'s receipt cannot be read: {exc.message}")
            kept[release.version] = None
    return kept


def summary(kept: Receipt | None) -> str:
    """One cell of ``inv releases``: where the release came from, and how it was vouched for."""
    if kept is None:
        return "-"
    dirty = "+dirty" if kept.dirty else ""
    if not kept.closure:  # nixpacks: the smoke line already says why it did not run
        return f"{kept.revision or '?'}{dirty}, {kept.smoke.result}, {len(kept.machines)} machine(s)"
    return f"{kept.revision or '?'}{dirty}, smoke {kept.smoke.result}, {len(kept.machines)} machine(s)"


NIXPACKS_NOT_RUN = "smoke not run: nixpacks builds remotely"


def nixpacks_version(runner: Runner) -> str:
    """The nixpacks flyctl runs: the one it installed in its config dir's ``bin`` (imgsrc/nixpacks_builder.go
    ``ensureNixpacksBinary``, ``flyctl.ConfigDir()``: ``~/.fly``), asked ``--version``; flyctl installs the
    newest release on first use, so before that nobody knows which it will be."""
    binary = Path.home() / ".fly" / "bin" / "nixpacks"
    if not binary.is_file():
        return f"unknown ({binary} not installed yet: flyctl installs the newest nixpacks on first use)"
    result = runner.run([str(binary), "--version"], mutates=False, quiet=True, check=False, timeout=30)
    words = result.stdout.split()
    return words[-1] if result.returncode == 0 and words else f"unknown ({binary} --version failed)"


@dataclass(frozen=True)
class Travel:
    """Where an image's manifest (SBOM) and receipt go: ``inv image.inspect``."""

    repository: str  # the app's repository: the image and, beside it, its receipts
    image_tag: str  # registry/app:nix-<store hash>
    image_digest: str  # "" until pushed
    # Each release that runs this image: {release, ref, digest} of its receipt artifact ("" if none kept).
    receipts: tuple[dict[str, str | int], ...]
    next: str  # where the next release of this image will keep its receipt
    unknown: str = ""  # why the registry or Fly could not say more ("" when they answered)


def travels(runner: Runner, fly: Flyctl, app: str, tag: str) -> Travel:
    """Where the image ``tag`` (``registry/app:nix-…``) and its manifest travel: its digest in the registry
    when pushed, and the receipt artifact of every Fly release running it (its digest when kept). Reads
    only; a registry or Fly that cannot answer leaves those unknown, and says why."""
    repository = tag.rpartition(":")[0]
    digest = ""
    try:
        with auth_file(registry_host(tag), REGISTRY_USER, fly.registry_password()) as auth:
            skopeo = Skopeo(runner)
            digest = skopeo.digest(tag, auth) or ""
            if not digest:
                return Travel(repository, tag, "", (), next_ref(repository, ""), "not pushed yet")
            pinned = f"{repository}@{digest}"
            running = [r for r in fly.releases(app) if r.image_ref == pinned]
            kept: list[dict[str, str | int]] = []
            for release in running:
                ref = artifact_ref(pinned, release.version)
                kept.append(
                    {"release": release.version, "ref": ref, "digest": skopeo.digest(ref, auth) or ""}
                )
            return Travel(repository, tag, digest, tuple(kept), next_ref(repository, digest))
    except NixflyError as exc:
        return Travel(repository, tag, digest, (), next_ref(repository, digest), exc.message)


def next_ref(repository: str, digest: str) -> str:
    """The receipt tag of the next release of the image ``digest`` ("": not pushed yet)."""
    if not digest:
        return f"{repository}:sha256-<digest of the push>.vN.nixfly"
    return f"{repository}:{tag_for(digest, 'N')}"
