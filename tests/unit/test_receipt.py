"""nixfly.receipt: a release's receipt, its registry tag, the OCI layout it travels in, reading it back."""

from __future__ import annotations

import hashlib
import json

import pytest

from nixfly import receipt
from nixfly.errors import NixflyError
from nixfly.flyctl import Machine

DIGEST = "sha256:" + "ab" * 32


def made(**changes) -> receipt.Receipt:
    fields = {
        "app": "oneshot",
        "mode": "integrated",
        "target": "fly",
        "release": 3,
        "revision": "8601514",
        "dirty": False,
        "closure": "/nix/store/0123-oneshot",
        "sbom_digest": "sha256:" + "cd" * 32,
        "smoke": receipt.Smoke("/nix/store/0123-oneshot", "passed", "tests/smoke -m integrated"),
        "started_at": "2026-12-06T11:00:00Z",
        "finished_at": "2026-12-06T11:01:00Z",
        "image": f"registry.fly.io/oneshot@{DIGEST}",
        "image_digest": DIGEST,
        "secrets": {"API_KEY": "f00d"},
    }
    return receipt.Receipt(**{**fields, **changes})


def test_a_receipt_reads_back_whole():
    kept = made(
        machines=({"id": "m1", "region": "ord", "state": "started", "digest": DIGEST},), regions=("ord",)
    )
    assert receipt.from_json(kept.to_json(), "x") == kept


def test_anything_else_is_refused_clearly():
    for text in ("not json", "{}", json.dumps({"smoke": {"store_path": "x"}})):
        with pytest.raises(NixflyError, match="x is not a nixfly receipt"):
            receipt.from_json(text, "x")


def test_the_tag_is_the_image_digest_and_the_release_in_the_image_s_repository():
    assert receipt.tag_for(DIGEST, 3) == f"sha256-{'ab' * 32}.v3.nixfly"
    assert receipt.artifact_ref(f"127.0.0.1:5000/oneshot@{DIGEST}", 3) == (
        f"127.0.0.1:5000/oneshot:sha256-{'ab' * 32}.v3.nixfly"
    )
    with pytest.raises(NixflyError, match="pinned neither by digest nor by a tag"):
        receipt.artifact_ref("registry.fly.io/oneshot:deployment-1", 3)


def test_a_release_deployed_by_tag_keeps_its_receipt_under_that_tag_in_nixfly_s_repository():
    """nixpacks: flyctl deploys registry.fly.io/<app>:deployment-<ULID>; the receipt is found from the
    release list alone (no read of the image's digest first)."""
    image = "registry.fly.io/oneshot:deployment-01JZ0000000000000000000000"
    assert receipt.artifact_ref(image, 3, "127.0.0.1:5000/oneshot") == (
        "127.0.0.1:5000/oneshot:deployment-01JZ0000000000000000000000.v3.nixfly"
    )
    with pytest.raises(NixflyError, match="too long"):
        receipt.artifact_ref(f"registry.fly.io/oneshot:{'x' * 120}", 3, "r/oneshot")
    with pytest.raises(NixflyError, match="pinned neither"):
        receipt.artifact_ref("oneshot", 3, "r/oneshot")


def test_machines_reached_and_their_regions():
    machines = [
        Machine("m2", "started", "syd", "i", 3, "app", (), digest=DIGEST),
        Machine("m1", "stopped", "ord", "i", 3, "app", (), digest=DIGEST),
        Machine("m0", "destroyed", "ams", "i", 2, "app", ()),
    ]
    listed, regions = receipt.machines_of(machines)
    assert [m["id"] for m in listed] == ["m1", "m2"] and regions == ("ord", "syd")


def test_the_layout_holds_one_artifact_receipt_as_config_sbom_as_layer(tmp_path):
    receipt.write_layout(tmp_path, '{"r": 1}', '{"bomFormat": "CycloneDX"}')
    (entry,) = json.loads((tmp_path / "index.json").read_text())["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == receipt.LAYOUT_NAME

    def blob(digest: str) -> bytes:
        data = (tmp_path / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest  # content-addressed, as OCI requires
        return data

    manifest = json.loads(blob(entry["digest"]))
    assert manifest["artifactType"] == manifest["config"]["mediaType"] == receipt.RECEIPT_TYPE
    assert blob(manifest["config"]["digest"]) == b'{"r": 1}'
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == receipt.SBOM_TYPE
    assert layer["digest"] == receipt.digest_of('{"bomFormat": "CycloneDX"}')


def test_a_layout_reads_back_its_receipt_and_sbom(tmp_path):
    receipt.write_layout(tmp_path, '{"r": 1}', '{"bomFormat": "CycloneDX"}')
    assert receipt.read_layout(tmp_path) == ('{"r": 1}', '{"bomFormat": "CycloneDX"}')
    (tmp_path / "index.json").write_text('{"manifests": []}')
    with pytest.raises(NixflyError, match="not one nixfly wrote"):
        receipt.read_layout(tmp_path)
