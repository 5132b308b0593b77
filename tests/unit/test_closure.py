"""nixfly.closure: `nix copy` between hosts, with the SSH options Nix's ssh store needs."""

from __future__ import annotations

import pytest
from helpers.fakes import ScriptedRunner

from nixfly import closure
from nixfly.errors import NixflyError
from nixfly.remote import Endpoint

SOURCE = Endpoint("build", "root", 2222)
DEST = Endpoint("web1", "deploy")


@pytest.fixture(autouse=True)
def plain_options(monkeypatch):
    monkeypatch.setenv("NIXFLY_NIX_OPTIONS", "")
    monkeypatch.delenv("NIXFLY_SSH_CONFIG", raising=False)


def test_sshopts_never_prompt_and_carry_the_one_port():
    assert closure.sshopts() == "-o BatchMode=yes"
    assert closure.sshopts(SOURCE, DEST) == "-o BatchMode=yes -p 2222"
    assert closure.sshopts(SOURCE, Endpoint("x", port=2222)) == "-o BatchMode=yes -p 2222"


def test_two_ports_cannot_be_said_in_one_nix_sshopts():
    with pytest.raises(NixflyError, match="different SSH ports"):
        closure.sshopts(SOURCE, Endpoint("web1", port=22))


def test_an_ssh_config_file_is_passed_unless_nix_would_split_it(monkeypatch):
    monkeypatch.setenv("NIXFLY_SSH_CONFIG", "/etc/nixfly/ssh_config")
    assert closure.sshopts() == "-o BatchMode=yes -F /etc/nixfly/ssh_config"
    monkeypatch.setenv("NIXFLY_SSH_CONFIG", "/my configs/ssh")
    with pytest.raises(NixflyError, match="contains whitespace"):
        closure.sshopts()


def test_copy_from_a_build_host_to_a_target():
    runner = ScriptedRunner().on("copy", program="nix")
    closure.copy(runner, "/nix/store/x", source=SOURCE, dest=DEST)
    [call] = runner.calls
    assert call.argv == (
        "nix",
        *("--extra-experimental-features", "nix-command flakes"),
        *(
            "copy",
            "--from",
            "ssh://root@build",
            "--no-check-sigs",
            "--to",
            "ssh://deploy@web1",
            "/nix/store/x",
        ),
    )
    assert call.env == {"NIX_SSHOPTS": "-o BatchMode=yes -p 2222"}


def test_copy_here_to_a_target_checks_signatures_as_usual():
    runner = ScriptedRunner().on("copy", program="nix")
    closure.copy(runner, "/nix/store/x", dest=DEST)
    assert runner.calls[0].line.endswith("copy --to ssh://deploy@web1 /nix/store/x")
