"""nixfly.skopeo: the registry's answers as the user's problem, credentials only in a private file."""

from __future__ import annotations

import base64
import json
import os
import subprocess
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


def test_the_auth_file_is_in_memory_only_and_gone_after_the_block(tmp_path, monkeypatch):
    """No disk holds the login, not even for a moment: a ``kill -9`` cannot leave it behind."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with skopeo.auth_file("registry.fly.io", "x", "pw-secret-1") as path:
        assert str(path).startswith(f"/proc/{os.getpid()}/fd/")
        assert os.readlink(path).startswith("/memfd:nixfly-registry-auth")
        # What skopeo does: open the path and read it (a child process, more than once).
        for _ in range(2):
            text = subprocess.run(["cat", str(path)], capture_output=True, text=True, check=True).stdout
            token = json.loads(text)["auths"]["registry.fly.io"]["auth"]
            assert base64.b64decode(token).decode() == "x:pw-secret-1"
        with pytest.raises(PermissionError):
            path.write_text("{}")  # sealed
        assert list(tmp_path.iterdir()) == []
    assert not path.exists()


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
    # The real login is in memory (/proc/<pid>/fd/N), where no file can be made beside it.
    with skopeo.auth_file("registry.fly.io", "x", "pw-secret-1") as auth:

        def copy(call):
            digestfile = call.argv[call.argv.index("--digestfile") + 1]
            Path(digestfile).write_text("sha256:" + "b" * 64)
            return Completed(call.argv, 0)

        runner = ScriptedRunner(tools=["skopeo"])
        runner.answer("copy", with_=copy)
        assert skopeo.Skopeo(runner).push("/nix/store/x.tar.gz", REF, auth) == "sha256:" + "b" * 64
    digestfile = Path(runner.calls[0].argv[runner.calls[0].argv.index("--digestfile") + 1])
    assert not digestfile.parent.exists()  # a private directory, removed once read


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
