"""The release diff and the SBOM: what `inv diff` and `inv sbom` cost for our closure.

    python bench/sbom.py [OLD NEW]      # or: nox -s bench -- bench/sbom.py

Real Nix builds `.#oneshot-integrated` in a fresh checkout (offline, the nixpkgs shim); OLD and NEW default to
that closure on both sides (the diff still reads and compares every path). Reported, as medians of several
runs: reading both manifests and diffing them in-process (what `inv diff` does), the diff alone, the same
diff scaled to a few hundred paths with every version changed, `nix store diff-closures` on the same pair
for a ratio, and the SBOM's size and time to build and validate. A benchmark reports; it never fails on a
time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import _timing as timing  # noqa: E402  (bench/, this script's own directory)
from helpers.project import copy_checkout, offline_nix_options  # noqa: E402

from nixfly import nix  # noqa: E402
from nixfly.closurediff import diff  # noqa: E402
from nixfly.nix import Nix, human_size  # noqa: E402
from nixfly.runner import Runner  # noqa: E402
from nixfly.sbom import Manifest, StorePath, manifest_of, to_json  # noqa: E402

RUNS = 7
SCALED_PATHS = 400


def median(fn: Callable[[], object], runs: int = RUNS) -> float:
    return timing.median(fn, runs)


def scaled(count: int, version: str) -> Manifest:
    """A closure of ``count`` paths, each referencing the previous ten, at ``version``."""
    paths: dict[str, StorePath] = {}
    names = [f"/nix/store/{version.replace('.', 'x'):a<32}-pkg{n}-{version}" for n in range(count)]
    for n, path in enumerate(names):
        paths[path] = StorePath(path, "", 300_000, tuple(names[max(0, n - 10) : n]))
    return Manifest(names[-1], paths, {})


def main() -> None:
    os.environ.setdefault("NIXFLY_NIX_OPTIONS", offline_nix_options())
    with tempfile.TemporaryDirectory() as tmp:
        if len(sys.argv) == 3:
            old, new = sys.argv[1], sys.argv[2]
        else:
            root = Path(tmp) / "checkout"
            root.mkdir()
            copy_checkout(root)
            built = Nix(Runner(cwd=root), root).build("oneshot-integrated", root / "result")
            old = new = built.store_path
        runner = Runner(cwd=REPO)
        before, after = manifest_of(runner, old), manifest_of(runner, new)
        read_and_diff = median(lambda: diff(manifest_of(runner, old), manifest_of(runner, new)))
        diff_only = median(lambda: diff(before, after))
        big_old, big_new = scaled(SCALED_PATHS, "1.0"), scaled(SCALED_PATHS, "2.0")
        big = median(lambda: diff(big_old, big_new))
        argv = nix.argv("store", "diff-closures", old, new)
        nix_time = median(lambda: runner.run(argv, mutates=False, quiet=True))
        started = time.perf_counter()
        document = to_json(after)  # the first in a process loads the schema: what `inv sbom` pays
        sbom_first = time.perf_counter() - started
        sbom_time = median(lambda: to_json(after), runs=3)
    print("\n## Release diff and SBOM (offline shim build)\n")
    print(f"closure: {len(after.paths)} paths, {human_size(after.nar_size)}; medians of {RUNS} runs\n")
    print("| measure | result |\n|---|---|")
    print(f"| inv diff in-process (two nix path-info, lock files, diff) | {read_and_diff * 1000:.0f} ms |")
    print(f"| nix store diff-closures, same pair | {nix_time * 1000:.0f} ms |")
    print(f"| ratio nixfly / nix | {read_and_diff / nix_time:.2f} |")
    print(f"| diff alone, our closure | {diff_only * 1e6:.0f} µs |")
    print(f"| diff alone, {SCALED_PATHS} paths, every version changed | {big * 1000:.1f} ms |")
    print(f"| SBOM size (CycloneDX 1.6 JSON) | {human_size(len(document.encode()))} |")
    print(f"| SBOM per store path | {len(document.encode()) / len(after.paths):.0f} B |")
    print(f"| SBOM build + schema validation, first in a process (inv sbom) | {sbom_first:.2f} s |")
    print(f"| SBOM build + schema validation, schema loaded (median of 3) | {sbom_time:.2f} s |")


if __name__ == "__main__":
    main()
