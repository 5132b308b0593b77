"""nixfly.fly.restore: what a rollback to N says about secrets, where N's config goes, and N's image."""

from __future__ import annotations

import pytest
from helpers.fakes import ScriptedRunner

from nixfly import receipt
from nixfly.errors import NixflyError
from nixfly.fly import restore

DIGEST = "sha256:" + "ab" * 32


def kept(tmp_path, **changes) -> receipt.Receipt:
    fields = {
        "app": "oneshot",
        "mode": "integrated",
        "target": "fly",
        "release": 1,
        "revision": "8601514",
        "dirty": False,
        "closure": "/nix/store/c-oneshot",
        "sbom_digest": DIGEST,
        "smoke": receipt.Smoke("/nix/store/c-oneshot", "passed", "tests/smoke"),
        "started_at": "",
        "finished_at": "",
        "image": f"127.0.0.1:5000/oneshot@{DIGEST}",
        "image_digest": DIGEST,
        "image_store_path": str(tmp_path / "0123456789abcdfghijklmnpqrsvwxyz-docker-image-oneshot.tar.gz"),
        "fly_toml": 'app = "oneshot"\n',
    }
    return receipt.Receipt(**{**fields, **changes})


def test_secrets_since_names_each_change_by_digest_only():
    then = {"A": "a" * 64, "B": "b" * 64, "C": "c" * 64}
    now = {"A": "a" * 64, "B": "d" * 64, "D": "e" * 64}
    assert restore.secrets_since(then, now) == [
        f"B: {'b' * 12}… → {'d' * 12}…",
        f"C: no longer recorded (was {'c' * 12}…)",
        f"D: set since ({'e' * 12}…)",
    ]
    assert restore.secrets_since(then, then) == []


def test_n_s_config_is_written_beside_the_state_not_over_the_checkout(tmp_path):
    path = restore.config_file(tmp_path, kept(tmp_path))
    assert path == tmp_path / "rollback-oneshot-v1.toml" and path.read_text() == 'app = "oneshot"\n'


def test_an_image_still_in_the_registry_is_left_alone(tmp_path):
    runner = ScriptedRunner(tools=["skopeo"]).on("inspect", stdout="{}")
    assert restore.ensure_image(runner, tmp_path, "pw", kept(tmp_path)) == ""
    assert [c.argv[1] for c in runner.calls] == ["inspect"]


def test_a_pruned_image_is_pushed_again_and_must_come_back_with_its_digest(tmp_path):
    record = kept(tmp_path)
    (tmp_path / record.image_store_path).write_text("archive")
    missing = ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr="manifest unknown")
    missing.on("copy")  # no digest file written: the push reports another digest ("")
    with pytest.raises(NixflyError, match="not v1's sha256:abab"):
        restore.ensure_image(missing, tmp_path, "pw", record)
    copy = next(c for c in missing.calls if c.argv[1] == "copy")
    assert copy.argv[-1] == "docker://127.0.0.1:5000/oneshot:nix-0123456789abcdfghijklmnpqrsvwxyz"


def test_a_pruned_image_gone_from_the_store_too_is_rebuilt_from_its_derivation_or_refused(tmp_path):
    gone = kept(tmp_path, image_store_path="/nix/store/0123456789abcdfghijklmnpqrsvwxyz-gone.tar.gz")
    runner = ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr="manifest unknown")
    with pytest.raises(NixflyError, match="is not in this store"):
        restore.ensure_image(runner, tmp_path, "pw", gone)
    drv = tmp_path / "x.drv"
    with_drv = kept(tmp_path, image_store_path=gone.image_store_path, image_deriver=str(drv))
    runner = ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr="manifest unknown")
    with pytest.raises(NixflyError, match=r"nor its derivation \S*x\.drv is in this store") as refused:
        restore.ensure_image(runner, tmp_path, "pw", with_drv)
    assert "git checkout 8601514 && inv deploy" in str(refused.value.hint)
    assert not any("--realise" in c.argv for c in runner.calls)
    drv.write_text("Derive(…)")
    runner = ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr="manifest unknown")
    runner.on("--realise", code=1, stderr="error: build of '/nix/store/x.drv' failed")
    with pytest.raises(NixflyError):
        restore.ensure_image(runner, tmp_path, "pw", with_drv)
    assert any(c.argv[:3] == ("nix-store", "--realise", str(drv)) for c in runner.calls)
