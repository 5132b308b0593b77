"""nixfly.skopeo: the registry's answers as the user's problem, credentials only in a private file."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from helpers.fakes import ScriptedRunner

from nixfly import skopeo
from nixfly.errors import NixflyError
from nixfly.runner import Completed

REF = "registry.fly.io/app:nix-1"


def test_tls_everywhere_but_this_machine():
    assert skopeo.tls_verify(REF)
    assert not skopeo.tls_verify("127.0.0.1:5000/app:x") and not skopeo.tls_verify("localhost/app:x")
    assert skopeo.tls_verify("localhost.example.org/app:x")
    assert skopeo.registry_host("127.0.0.1:5000/app:x") == "127.0.0.1:5000"


def test_the_auth_file_is_private_and_gone_after_the_block():
    with skopeo.auth_file("registry.fly.io", "x", "pw-secret-1") as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        token = json.loads(path.read_text())["auths"]["registry.fly.io"]["auth"]
        assert base64.b64decode(token).decode() == "x:pw-secret-1"
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        ("unauthorized: authentication required", "registry registry.fly.io refused the credentials"),
        ("requested access to the resource is denied", "registry registry.fly.io refused the credentials"),
        ("dial tcp: connection refused", "registry registry.fly.io is unreachable"),
        (
            "pinging container registry registry.fly.io: i/o timeout",
            "registry registry.fly.io is unreachable",
        ),
        ("something else", f"skopeo failed for {REF}: something else"),
    ],
)
def test_explain(stderr, message):
    assert skopeo.explain(stderr, REF).message == message


def test_exists_reads_the_registry(tmp_path):
    auth = tmp_path / "auth.json"
    runner = ScriptedRunner(tools=["skopeo"]).on("inspect", stdout="{}")
    assert skopeo.Skopeo(runner).exists(REF, auth)
    assert runner.calls[0].argv == (
        "skopeo",
        "inspect",
        "--raw",
        "--authfile",
        str(auth),
        "--tls-verify=true",
        f"docker://{REF}",
    )
    for missing in ("manifest unknown", "name unknown: repository not found"):
        assert not skopeo.Skopeo(
            ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr=missing)
        ).exists(REF, auth)
    refused = ScriptedRunner(tools=["skopeo"]).on("inspect", code=1, stderr="noise\nunauthorized\n")
    with pytest.raises(NixflyError, match="refused the credentials"):
        skopeo.Skopeo(refused).exists(REF, auth)


def test_push_returns_the_digest_skopeo_wrote(tmp_path):
    auth = tmp_path / "auth.json"

    def copy(call):
        digestfile = call.argv[call.argv.index("--digestfile") + 1]
        Path(digestfile).write_text("sha256:" + "b" * 64)
        return Completed(call.argv, 0)

    runner = ScriptedRunner(tools=["skopeo"])
    runner.answer("copy", with_=copy)
    assert skopeo.Skopeo(runner).push("/nix/store/x.tar.gz", REF, auth) == "sha256:" + "b" * 64
    # Beside the auth file: in the private directory that is removed with it.
    assert Path(runner.calls[0].argv[runner.calls[0].argv.index("--digestfile") + 1]).parent == tmp_path


def test_a_failed_push_is_explained(tmp_path):
    runner = ScriptedRunner(tools=["skopeo"]).on("copy", code=1, stderr="Error: connection refused")
    with pytest.raises(NixflyError, match=r"registry registry\.fly\.io is unreachable"):
        skopeo.Skopeo(runner).push("/nix/store/x.tar.gz", REF, tmp_path / "auth.json")


def test_missing_skopeo_says_how_to_install_it(tmp_path):
    with pytest.raises(NixflyError) as info:
        skopeo.Skopeo(ScriptedRunner()).exists(REF, tmp_path / "auth.json")
    assert info.value.message == "skopeo not found on PATH" and info.value.hint == skopeo.INSTALL_HINT


def test_config_of_archive():
    runner = ScriptedRunner(tools=["skopeo"]).on("--config", stdout='{"config": {"Cmd": ["start"]}}')
    assert skopeo.Skopeo(runner).config_of_archive("/nix/store/x")["config"]["Cmd"] == ["start"]
    assert runner.calls[0].line == "inspect --config docker-archive:/nix/store/x"
