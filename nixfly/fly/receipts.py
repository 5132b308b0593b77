"""Fly releases' receipts in the registry: pushed after verify, read back by any checkout.

The artifact sits in the app's own repository (``receipt.artifact_ref``), so the credentials that push and
pull the image are the ones that write and read it; reading one receipt is one ``skopeo inspect``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from nixfly.flyctl import REGISTRY_USER, Flyctl, FlyRelease
from nixfly.futures import wait_all
from nixfly.receipt import LAYOUT_NAME, Receipt, artifact_ref, from_json, layout, private_dir, read_layout
from nixfly.runner import Runner
from nixfly.sbom import Manifest
from nixfly.sbom import from_json as sbom_from_json
from nixfly.skopeo import Skopeo, auth_file, registry_host


def push(runner: Runner, password: str, receipt: Receipt, sbom: str) -> str:
    """Push ``receipt`` (and the release's SBOM) beside its image; returns where it went."""
    ref = artifact_ref(receipt.image, receipt.release)
    with (
        auth_file(registry_host(ref), REGISTRY_USER, password) as auth,
        layout(receipt.to_json(), sbom) as oci,
    ):
        Skopeo(runner).push_layout(oci, LAYOUT_NAME, ref, auth)
    return ref


def read(runner: Runner, password: str, release: FlyRelease) -> Receipt | None:
    """Release ``release``'s receipt, or None: not deployed by digest (nixpacks, or by hand), or none kept."""
    if "@" not in release.image_ref:
        return None
    ref = artifact_ref(release.image_ref, release.version)
    with auth_file(registry_host(ref), REGISTRY_USER, password) as auth:
        text = Skopeo(runner).config_blob(ref, auth)
    return None if text is None else from_json(text, ref)


def read_whole(fly: Flyctl, release: FlyRelease) -> tuple[Receipt, Manifest] | None:
    """Release ``release``'s receipt and the manifest of what it runs (its SBOM), in one pull of the
    artifact; None when it has none. What the plan's diff compares against (``Observation``)."""
    if "@" not in release.image_ref:
        return None
    ref = artifact_ref(release.image_ref, release.version)
    with auth_file(registry_host(ref), REGISTRY_USER, fly.registry_password()) as auth, private_dir() as oci:
        if not Skopeo(fly.runner).pull_layout(ref, oci / "layout", LAYOUT_NAME, auth):
            return None
        text, document = read_layout(oci / "layout")
    return from_json(text, ref), sbom_from_json(document, ref)


def read_all(runner: Runner, fly: Flyctl, releases: list[FlyRelease]) -> dict[int, Receipt | None]:
    """Each release's receipt, read at once (one round trip each, in parallel): ``inv releases``. The
    registry is asked only when some release was deployed by digest."""
    if not any("@" in r.image_ref for r in releases):
        return {r.version: None for r in releases}
    password = fly.registry_password()
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nixfly-receipts")
    try:
        found = {r.version: pool.submit(read, runner, password, r) for r in releases}
        wait_all(found.values())  # in slices: one unbounded wait could sleep through a Ctrl-C
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return {version: future.result() for version, future in found.items()}


def summary(kept: Receipt | None) -> str:
    """One cell of ``inv releases``: where the release came from, and how it was vouched for."""
    if kept is None:
        return "-"
    dirty = "+dirty" if kept.dirty else ""
    return f"{kept.revision or '?'}{dirty}, smoke {kept.smoke.result}, {len(kept.machines)} machine(s)"
