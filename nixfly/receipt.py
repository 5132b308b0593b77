"""A receipt for every release: what was shipped, from where, tested how, and where it came up.

A receipt is a JSON document (``Receipt``) kept where any checkout can read it:

* Fly (the image path): beside the image, in the same registry repository, as an OCI artifact tagged
  ``sha256-<image digest hex>.v<release>.nixfly`` (the image digest, cosign-style, plus the release: one
  image can be deployed as several releases, each with its own fly toml and secrets). Its config blob is
  the receipt (media type ``application/vnd.nixfly.receipt.v1+json``), its one layer the release's
  CycloneDX SBOM. The OCI image-spec allows both: a manifest's ``config.mediaType`` names any
  document, and ``artifactType`` says what the artifact is (image-spec manifest.md). skopeo copies it
  from an ``oci:`` layout nixfly writes, and ``skopeo inspect --raw --config`` reads the receipt back in
  one command.
* Hosts: a file beside the generation it describes (``profile-<N>-receipt.json`` next to the profile's
  ``profile-<N>-link``), on the host, where the generation's closure is.

Secret values are never in a receipt: their names and keyed digests only (``secrets.Fingerprints``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nixfly.errors import NixflyError
from nixfly.flyctl import Machine

RECEIPT_TYPE = "application/vnd.nixfly.receipt.v1+json"
SBOM_TYPE = "application/vnd.cyclonedx+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYOUT_NAME = "receipt"
SCHEMA = 1


def now() -> str:
    """UTC, to the second, RFC 3339: what a receipt's times look like."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Smoke:
    """What vouches for the closure: the smoke suite, for exactly this store path."""

    store_path: str
    # passed (this run) | passed before (this exact closure, an earlier run) | skipped (--skip-smoke)
    result: str
    tests: str  # the suite that ran: tests/smoke, limited to the mode's marker


@dataclass(frozen=True)
class Receipt:
    app: str
    mode: str
    target: str  # fly | local | ssh://user@host
    release: int  # Fly: the release version; hosts: the generation
    revision: str
    dirty: bool
    closure: str
    sbom_digest: str
    smoke: Smoke
    started_at: str
    finished_at: str
    image: str = ""  # Fly: registry/app@sha256:…
    image_digest: str = ""
    image_store_path: str = ""  # the docker-archive Nix built: pushed again if the registry pruned the image
    image_deriver: str = ""  # its derivation: builds that same path again once it is gone from the store
    flyctl: str = ""
    machines: tuple[dict[str, str], ...] = ()  # {id, region, state, digest}
    regions: tuple[str, ...] = ()
    fly_toml: str = ""  # the app config it was deployed with (what a rollback restores)
    secrets: Mapping[str, str] = field(default_factory=dict)  # name → keyed digest, never a value
    schema: int = SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def smoke_tests(suite: str) -> str:
    """Which tests vouch for a closure: tests/smoke, limited to the mode's marker (``smoke.pytest_args``)."""
    return f"tests/smoke -m {suite}" if suite else "tests/smoke"


def machines_of(machines: Sequence[Machine]) -> tuple[tuple[dict[str, str], ...], tuple[str, ...]]:
    """The machines a release reached (live ones) and their regions, for a receipt."""
    live = [m for m in machines if m.state not in ("destroyed", "destroying")]
    listed = tuple(
        {"id": m.id, "region": m.region, "state": m.state, "digest": m.digest}
        for m in sorted(live, key=lambda m: (m.region, m.id))
    )
    return listed, tuple(sorted({m.region for m in live}))


def from_json(text: str, source: str) -> Receipt:
    """A receipt as written by ``to_json``; a clear error for anything else."""
    try:
        data = json.loads(text)
        smoke = Smoke(**data.pop("smoke"))
        data["machines"] = tuple(data.get("machines", ()))
        data["regions"] = tuple(data.get("regions", ()))
        return Receipt(smoke=smoke, **data)
    except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
        raise NixflyError(
            f"{source} is not a nixfly receipt ({exc.__class__.__name__})",
            "it was written by another tool or a newer nixfly: `inv releases --json` shows what was read",
        ) from None


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# --- Fly: the receipt as an OCI artifact beside the image ---------------------------------------------------
def tag_for(image_digest: str, release: int | str) -> str:
    """``sha256:abc…`` and release 3 → ``sha256-abc….v3.nixfly`` (a valid tag: ``[\\w][\\w.-]{0,127}``)."""
    algorithm, _, hexits = image_digest.partition(":")
    if not hexits or not hexits.isalnum():
        raise NixflyError(f"{image_digest!r} is not an image digest", "deploy with --builder image")
    return f"{algorithm}-{hexits}.v{release}.nixfly"


def artifact_ref(image: str, release: int, repository: str = "") -> str:
    """Where release ``release`` of ``image`` keeps its receipt.

    Pinned (``registry/app@sha256:…``, nixfly's image): the same repository, ``tag_for`` its digest. By tag
    (nixpacks: flyctl pushed and deployed ``registry.fly.io/<app>:deployment-<ULID>``, imgsrc
    ``NewDeploymentTag``): ``repository``, the app's repository in nixfly's registry (where flyctl pushed
    the image), tagged ``<that tag>.v<release>.nixfly``: readable from the release list alone, as for a
    pinned image (no extra read of the image's digest)."""
    pinned, _, digest = image.partition("@")
    if digest:
        return f"{pinned}:{tag_for(digest, release)}"
    name, colon, tag = image.rpartition(":")
    if not (repository and colon and "/" not in tag and "/" in name):
        raise NixflyError(f"{image} is pinned neither by digest nor by a tag", "deploy it again with nixfly")
    artifact = f"{tag}.v{release}.nixfly"
    if len(artifact) > 128:  # the distribution spec's tag limit
        raise NixflyError(f"{image}'s tag is too long to name its receipt", "deploy it again with nixfly")
    return f"{repository}:{artifact}"


def write_layout(directory: Path, receipt: str, sbom: str) -> None:
    """An OCI image layout (image-spec image-layout.md) holding one artifact: the receipt as its config,
    the SBOM as its one layer, under the name ``LAYOUT_NAME``."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes, media_type: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": RECEIPT_TYPE,
        "config": blob(receipt.encode(), RECEIPT_TYPE),
        "layers": [blob(sbom.encode(), SBOM_TYPE)],
    }
    entry = blob(json.dumps(manifest, sort_keys=True).encode(), MANIFEST_TYPE)
    entry["annotations"] = {"org.opencontainers.image.ref.name": LAYOUT_NAME}
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


def read_layout(directory: Path) -> tuple[str, str]:
    """(receipt, SBOM) from a layout ``write_layout`` made, as pulled back from a registry."""
    index = json.loads((directory / "index.json").read_text())
    blobs = directory / "blobs" / "sha256"

    def blob(descriptor: Mapping[str, Any]) -> str:
        return (blobs / str(descriptor["digest"]).split(":", 1)[1]).read_text()

    try:
        manifest = json.loads(blob(index["manifests"][0]))
        return blob(manifest["config"]), blob(manifest["layers"][0])
    except (KeyError, IndexError, OSError, json.JSONDecodeError) as exc:
        raise NixflyError(
            f"the receipt artifact in {directory} is not one nixfly wrote ({exc.__class__.__name__})"
        ) from None


@contextmanager
def private_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="nixfly-receipt-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def layout(receipt: str, sbom: str) -> Iterator[Path]:
    """``write_layout`` in a private temporary directory, removed after the block."""
    with private_dir() as directory:
        write_layout(directory, receipt, sbom)
        yield directory


# --- hosts: the receipt beside the generation ---------------------------------------------------------------
def host_file(profile_dir: Path, generation: int) -> Path:
    """``<profile dir>/profile-<N>-receipt.json``, beside ``profile-<N>-link`` (nix-env's own naming)."""
    return profile_dir / f"profile-{generation}-receipt.json"
