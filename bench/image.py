"""The Docker-free image: its size against the closure's, and a second push of the unchanged image.

    python bench/image.py        # or: nox -s bench -- bench/image.py

Real Nix builds `.#oneshot-integrated` and `.#oci-image-integrated` (offline, the nixpkgs shim), real skopeo
pushes to a real registry on loopback. Targets: the image adds little to the closure; a push of the
unchanged image uploads nothing (the tag names the content). A benchmark reports; it never fails on a time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from flyctl_sim import control  # noqa: E402
from helpers.project import GIT_ENV, Project, copy_checkout, offline_nix_options  # noqa: E402
from helpers.registry import running_registry  # noqa: E402

from nixfly.nix import Nix, human_size  # noqa: E402
from nixfly.runner import Runner  # noqa: E402


def inv(project: Project, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = project.inv(*args)
    if result.returncode != 0:
        raise SystemExit(f"inv {' '.join(args)} failed:\n{result.stderr}")
    return time.perf_counter() - started, result.stderr


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, running_registry(Path(tmp) / "registry") as registry:
        root = Path(tmp) / "checkout"
        root.mkdir()
        copy_checkout(root)
        (root / "invoke.yaml").write_text(f'nixfly:\n  registry: "{registry.host}"\n')
        sim = control.init(Path(tmp) / "sim")
        env = {
            **control.env(sim),
            **GIT_ENV,
            "NO_COLOR": "1",
            "NIXFLY_NIX_OPTIONS": os.environ.get("NIXFLY_NIX_OPTIONS") or offline_nix_options(),
        }
        project = Project(root, sim, env)
        inv(project, "build")
        inv(project, "image.push")
        again, log = inv(project, "image.push")
        closure = Nix(Runner(cwd=root), root).sizes(os.path.realpath(root / "result"))[1]
        image = os.path.getsize(os.path.realpath(root / "result-image"))
    print("\n## The image builder (offline shim build, a real registry on loopback)\n")
    print("| measure | result |\n|---|---|")
    print(f"| closure of .#oneshot-integrated | {human_size(closure)} |")
    print(f"| image tarball .#oci-image-integrated (uncompressed) | {human_size(image)} |")
    uploaded = "no upload" if "nothing uploaded" in log else "UPLOADED"
    print(f"| `inv image.push` of the unchanged image | {again:.2f} s ({uploaded}) |")


if __name__ == "__main__":
    main()
