"""The Docker-free path: the mode's OCI image built by Nix, pushed by skopeo, deployed by reference.

The tag is the image's store-path hash, so the same closure always gets the same tag and is never pushed
twice. Fly is told the digest the push produced (``pinned``), never the tag: a tag can be moved, a digest
names exactly the bytes that were built from the smoke-tested closure.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from nixfly.buildhost import BuildHost
from nixfly.errors import NixflyError
from nixfly.flyctl import REGISTRY_USER
from nixfly.nix import Built
from nixfly.runner import Runner
from nixfly.skopeo import Skopeo, auth_file, registry_host


def tag_for(store_path: str) -> str:
    """``/nix/store/<hash>-docker-image-oneshot.tar.gz`` → ``nix-<hash>``."""
    name = Path(store_path).name
    digest = name.split("-", 1)[0]
    if len(digest) != 32:
        raise NixflyError(f"{store_path} does not look like a Nix store path")
    return f"nix-{digest}"


def reference(registry: str, app: str, store_path: str) -> str:
    return f"{registry}/{app}:{tag_for(store_path)}"


def pinned(ref: str, digest: str) -> str:
    """``registry/app:tag`` + ``sha256:…`` → ``registry/app@sha256:…``: what a deploy names."""
    repository = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    return f"{repository}@{digest}"


@dataclass(frozen=True)
class Pushed:
    ref: str
    uploaded: bool
    # The manifest's digest in the registry ("" in a dry-run): the deploy names the image by it.
    digest: str = ""


def layers(archive: str) -> list[tuple[str, int]]:
    """(layer file, bytes) for each layer of a docker-archive tarball, base first, read from its manifest."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise NixflyError(f"{archive} has no manifest.json: not a docker-archive")
        manifest = json.load(member)
        return [(name, tar.getmember(name).size) for name in manifest[0]["Layers"]]


def holds(archive: str, store_path: str) -> bool:
    """Whether a layer of the docker-archive ``archive`` carries ``store_path`` (its directory entry)."""
    wanted = Path(store_path).relative_to("/").as_posix()
    with tarfile.open(archive) as tar:
        for name, _ in layers(archive):
            member = tar.extractfile(name)
            if member is None:
                continue
            # A layer may be compressed ("r:*"); members are read header by header, never whole.
            with tarfile.open(fileobj=member, mode="r:*") as layer:
                if any(m.name.removeprefix("./").lstrip("/") == wanted for m in layer):
                    return True
    return False


def build_on(host: BuildHost, attr: str, out_link: str, here: Runner, *, flake: str = ".") -> Built:
    """The image tarball, built on ``host`` (here or ``--on``) from ``flake`` (``.`` or a pinned source)
    and present here: pushes start here."""
    if not attr:
        raise NixflyError(
            "this mode has no image attribute", "set nixfly.modes.<mode>.image_attr in invoke.yaml"
        )
    built = host.build(attr, out_link, flake=flake)
    host.fetch(built, here)
    return built


def require_tested(archive: str, store_path: str) -> None:
    """Refuse an image that does not carry the closure the smoke tests ran (``store_path``): it would ship
    code nobody tested (e.g. ``--skip-build`` after the checkout changed)."""
    if not holds(archive, store_path):
        raise NixflyError(
            f"the image {Path(archive).name} does not hold the tested closure {store_path}: the checkout "
            "no longer builds what ./result holds",
            "run `inv deploy` without --skip-build (it builds, tests and ships one closure), "
            "or restore the checkout ./result was built from",
        )


def push(runner: Runner, archive: str, ref: str, password: str) -> Pushed:
    """Push unless the tag is already there (the tag names the content, so present means identical).

    ``password`` is what flyctl itself logs in to the registry with (``flyctl.registry_password``).
    """
    skopeo = Skopeo(runner)
    with auth_file(registry_host(ref), REGISTRY_USER, password) as auth:
        there = skopeo.digest(ref, auth)
        if there is not None:
            return Pushed(ref, uploaded=False, digest=there)
        digest = skopeo.push(archive, ref, auth)
    return Pushed(ref, uploaded=not runner.dry_run, digest=digest)
