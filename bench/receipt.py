"""What a receipt costs: pushing it beside the image, and the plan's one extra round trip to read it back.

    python bench/receipt.py [STORE_PATH]      # or: nox -s bench -- bench/receipt.py

A real registry (docker-registry) on loopback, real skopeo. STORE_PATH (default: a small path added to the
store) is the closure described. Reported, as medians of several runs: building and validating the SBOM,
pushing the receipt artifact (receipt + SBOM, one ``skopeo copy``), reading it back whole (the diff's one
extra round trip, ``Observation.live_release``), the diff against it, and the ratio of the plan's diff via
the registry to the same diff from this machine's store. Then the same for a nixpacks release (its SBOM is
the checkout's lock files and build facts, its receipt found by flyctl's deployment tag): sizes, push, and
the plan's read. A benchmark reports; it never fails on a time.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's nixfly, not an installed one

import _timing as timing  # noqa: E402  (bench/, this script's own directory)
from helpers.registry import running_registry  # noqa: E402

from nixfly import receipt, sbom  # noqa: E402
from nixfly.closurediff import diff  # noqa: E402
from nixfly.fly import receipts  # noqa: E402
from nixfly.flyctl import Flyctl, FlyRelease  # noqa: E402
from nixfly.nix import human_size  # noqa: E402
from nixfly.runner import Runner  # noqa: E402

RUNS = 7


def median(fn: Callable[[], object], runs: int = RUNS) -> float:
    return timing.median(fn, runs)


class Registry(Flyctl):
    """flyctl's registry login, without flyctl: the test registry asks for none."""

    def registry_password(self) -> str:
        return "unused"


def main(store_path: str) -> None:
    runner = Runner()
    here = sbom.manifest_of(runner, store_path)
    document = sbom.to_json(here)
    build = median(lambda: sbom.to_json(sbom.manifest_of(runner, store_path)), 3)
    digest = "sha256:" + "ab" * 32
    with tempfile.TemporaryDirectory() as work, running_registry(Path(work)) as registry:
        kept = receipt.Receipt(
            app="oneshot",
            mode="integrated",
            target="fly",
            release=1,
            revision="bench",
            dirty=False,
            closure=store_path,
            sbom_digest=receipt.digest_of(document),
            smoke=receipt.Smoke(store_path, "passed", "tests/smoke"),
            started_at=receipt.now(),
            finished_at=receipt.now(),
            image=f"{registry.host}/oneshot@{digest}",
            image_digest=digest,
            fly_toml=(REPO / "fly-integrated.toml").read_text(),
        )
        live = FlyRelease(1, "complete", kept.image, "", "")
        fly = Registry(runner)
        repository = f"{registry.host}/oneshot"
        push = median(lambda: receipts.push(runner, "unused", kept, document, repository))
        read = median(lambda: receipts.read_whole(fly, live, repository))
        pulled = receipts.read_whole(fly, live, repository)
        assert pulled is not None
        via_registry = median(lambda: diff(receipts.read_whole(fly, live, repository)[1], here))  # type: ignore[index]
        in_store = median(lambda: diff(sbom.manifest_of(runner, store_path), here))
        # A nixpacks release: flyctl deployed registry.fly.io/oneshot:deployment-<ULID>.
        built = sbom.nixpacks_manifest(REPO, "oneshot", "nixpacks.toml", "1.41.0", "bench")
        nixpacks_sbom = sbom.to_json(built)
        image = "registry.fly.io/oneshot:deployment-01JZBENCH0000000000000000"
        nixpacks = replace(
            kept,
            closure="",
            smoke=receipt.Smoke("", receipts.NIXPACKS_NOT_RUN, ""),
            image=image,
            image_digest=digest,
            sbom_digest=receipt.digest_of(nixpacks_sbom),
        )
        nixpacks_push = median(lambda: receipts.push(runner, "unused", nixpacks, nixpacks_sbom, repository))
        nixpacks_live = FlyRelease(1, "complete", image, "", "")
        nixpacks_read = median(lambda: receipts.read_whole(fly, nixpacks_live, repository))
        assert receipts.read_whole(fly, nixpacks_live, repository) is not None
    print(f"closure: {store_path} ({len(here.paths)} paths, {human_size(here.nar_size)})")
    print(f"SBOM: {human_size(len(document))}; receipt: {human_size(len(kept.to_json()))}")
    print(f"SBOM build + validation: {build * 1000:.0f} ms (median of 3)")
    print(f"receipt push (skopeo copy oci: → registry): {push * 1000:.0f} ms")
    print(f"live receipt + SBOM read (the plan's one extra round trip): {read * 1000:.0f} ms")
    print(
        f"diff against the live release: via the registry {via_registry * 1000:.0f} ms, "
        f"from this store {in_store * 1000:.0f} ms (ratio {via_registry / in_store:.1f}x)"
    )
    print(
        f"nixpacks release: SBOM {human_size(len(nixpacks_sbom))} ({len(built.packages)} packages), "
        f"receipt {human_size(len(nixpacks.to_json()))}; push {nixpacks_push * 1000:.0f} ms; "
        f"the plan's read (one skopeo copy) {nixpacks_read * 1000:.0f} ms"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = sys.argv[1]
    else:
        content = Path(tempfile.mkdtemp(prefix="nixfly-bench-")) / "oneshot-integrated"
        (content / "bin").mkdir(parents=True)
        (content / "bin" / "start-oneshot").write_text("#!/bin/sh\n")
        argv = ["nix-store", "--add", str(content)]
        target = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    main(target)
