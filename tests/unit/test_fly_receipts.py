"""nixfly.fly.receipts: a Fly release's receipt read from beside its image, only when it can have one."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from helpers.fakes import ScriptedRunner

from nixfly import receipt
from nixfly.errors import NixflyError
from nixfly.fly import receipts
from nixfly.flyctl import FlyRelease

DIGEST = "sha256:" + "ab" * 32
REPO = "127.0.0.1:5000/oneshot"
KEPT = receipt.Receipt(
    app="oneshot",
    mode="integrated",
    target="fly",
    release=2,
    revision="8601514",
    dirty=True,
    closure="/nix/store/0123-oneshot",
    sbom_digest="sha256:" + "cd" * 32,
    smoke=receipt.Smoke("/nix/store/0123-oneshot", "passed", "tests/smoke -m integrated"),
    started_at="2026-12-06T11:00:00Z",
    finished_at="2026-12-06T11:01:00Z",
    image=f"registry.fly.io/oneshot@{DIGEST}",
    image_digest=DIGEST,
    machines=({"id": "m1", "region": "ord", "state": "started", "digest": DIGEST},),
)


class Fly:
    def __init__(self) -> None:
        self.asked = 0

    def registry_password(self) -> str:
        self.asked += 1
        return "pw-1"


def release(version: int, image: str) -> FlyRelease:
    return FlyRelease(version, "complete", image, "", "")


def test_a_release_pinned_by_digest_is_read_from_its_tag_in_one_command():
    runner = ScriptedRunner(tools=["skopeo"]).on("inspect", stdout=KEPT.to_json())
    assert receipts.read(runner, "pw-1", release(2, KEPT.image), REPO) == KEPT
    (call,) = runner.calls
    assert call.argv[:4] == ("skopeo", "inspect", "--raw", "--config")
    assert call.argv[-1] == f"docker://registry.fly.io/oneshot:sha256-{'ab' * 32}.v2.nixfly"


def test_no_receipt_kept_reads_as_none():
    runner = ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr="manifest unknown")
    assert receipts.read(runner, "pw-1", release(2, KEPT.image), REPO) is None


def test_releases_not_deployed_by_nixfly_cost_no_registry_read():
    runner, fly = ScriptedRunner(tools=["skopeo"]), Fly()
    found = receipts.read_all(runner, fly, [release(1, "registry.fly.io/oneshot:latest")], REPO)  # type: ignore[arg-type]
    assert found == {1: None} and runner.calls == [] and fly.asked == 0


def test_read_all_asks_for_the_password_once():
    runner, fly = ScriptedRunner(tools=["skopeo"]).on("inspect", stdout=KEPT.to_json()), Fly()
    found = receipts.read_all(runner, fly, [release(2, KEPT.image), release(1, "x/y:deployment-1")], REPO)  # type: ignore[arg-type]
    assert found == {2: KEPT, 1: KEPT} and fly.asked == 1
    nixpacks = [c.argv[-1] for c in runner.calls if c.argv[-1].endswith(".v1.nixfly")]
    assert nixpacks == [f"docker://{REPO}:deployment-1.v1.nixfly"]


def test_a_nixpacks_receipt_the_registry_cannot_serve_is_a_warning_not_a_failure():
    runner = ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr="dial tcp: connection refused")
    found = receipts.read_all(runner, Fly(), [release(1, "x/y:deployment-1")], REPO)  # type: ignore[arg-type]
    assert found == {1: None}
    with pytest.raises(NixflyError, match="unreachable"):
        receipts.read_all(runner, Fly(), [release(2, KEPT.image)], REPO)  # type: ignore[arg-type]


def test_the_summary_cell():
    assert receipts.summary(None) == "-"
    assert receipts.summary(KEPT) == "8601514+dirty, smoke passed, 1 machine(s)"
    nixpacks = replace(KEPT, closure="", smoke=receipt.Smoke("", receipts.NIXPACKS_NOT_RUN, ""))
    assert (
        receipts.summary(nixpacks) == "8601514+dirty, smoke not run: nixpacks builds remotely, 1 machine(s)"
    )


def test_the_nixpacks_version_is_the_one_flyctl_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert receipts.nixpacks_version(ScriptedRunner()).startswith("unknown (")
    binary = tmp_path / ".fly" / "bin" / "nixpacks"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    runner = ScriptedRunner(tools=[str(binary)]).on("--version", stdout="nixpacks 1.41.0\n")
    assert receipts.nixpacks_version(runner) == "1.41.0"


class Releases(Fly):
    def __init__(self, found: list[FlyRelease]) -> None:
        super().__init__()
        self.found = found

    def releases(self, app: str) -> list[FlyRelease]:
        return self.found


def test_where_an_image_s_manifest_travels_with_the_digests_the_registry_holds():
    tag = f"{REPO}:nix-0123456789abcdfghijklmnpqrsvwxyz"
    manifest, artifact = '{"image": 1}', '{"receipt": 1}'
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    pinned = f"{REPO}@{digest}"
    kept_at = receipt.artifact_ref(pinned, 3)
    runner = ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr="manifest unknown")
    runner.on(f"docker://{tag}", stdout=manifest).on(f"docker://{kept_at}", stdout=artifact)
    fly = Releases([release(4, f"{REPO}@sha256:{'ef' * 32}"), release(3, pinned), release(2, pinned)])
    travel = receipts.travels(runner, fly, "oneshot", tag)  # type: ignore[arg-type]
    assert (travel.repository, travel.image_tag, travel.image_digest, travel.unknown) == (
        REPO,
        tag,
        digest,
        "",
    )
    assert travel.receipts == (
        {"release": 3, "ref": kept_at, "digest": "sha256:" + hashlib.sha256(artifact.encode()).hexdigest()},
        {"release": 2, "ref": receipt.artifact_ref(pinned, 2), "digest": ""},
    )
    assert travel.next == f"{REPO}:{digest.replace(':', '-')}.vN.nixfly"


def test_an_image_not_pushed_or_a_registry_that_does_not_answer_says_why():
    tag = f"{REPO}:nix-0123456789abcdfghijklmnpqrsvwxyz"
    missing = ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr="manifest unknown")
    travel = receipts.travels(missing, Releases([]), "oneshot", tag)  # type: ignore[arg-type]
    assert (travel.image_digest, travel.receipts, travel.unknown) == ("", (), "not pushed yet")
    assert travel.next == f"{REPO}:sha256-<digest of the push>.vN.nixfly"
    down = ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr="dial tcp: connection refused")
    travel = receipts.travels(down, Releases([]), "oneshot", tag)  # type: ignore[arg-type]
    assert travel.unknown == "registry 127.0.0.1:5000 is unreachable"
