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


def test_sshopts_never_prompt_and_carry_the_port():
    assert closure.sshopts() == "-o BatchMode=yes"
    assert closure.sshopts(2222) == "-o BatchMode=yes -p 2222"


def test_an_ssh_config_file_is_passed_unless_nix_would_split_it(monkeypatch):
    monkeypatch.setenv("NIXFLY_SSH_CONFIG", "/etc/nixfly/ssh_config")
    assert closure.sshopts() == "-o BatchMode=yes -F /etc/nixfly/ssh_config"
    monkeypatch.setenv("NIXFLY_SSH_CONFIG", "/my configs/ssh")
    with pytest.raises(NixflyError, match="contains whitespace"):
        closure.sshopts()


NIX = ("nix", "--extra-experimental-features", "nix-command flakes")


def test_copy_between_two_hosts_on_one_port_is_one_nix_copy():
    runner = ScriptedRunner().on("copy", program="nix")
    dest = Endpoint("web1", "deploy", 2222)
    closure.copy(runner, "/nix/store/x", source=SOURCE, dest=dest)
    [call] = runner.calls
    fetch = ("--from", "ssh://root@build", "--no-check-sigs")
    assert call.argv == (*NIX, "copy", *fetch, "--to", "ssh://deploy@web1", "/nix/store/x")
    assert call.env == {"NIX_SSHOPTS": "-o BatchMode=yes -p 2222"}


@pytest.mark.parametrize("port", [None, 22, 2223])
def test_copy_between_two_ports_goes_through_here_each_hop_with_its_own_port(port):
    """The build host's -p 2222 must not reach a target on another port, or on the ssh config's port."""
    runner = ScriptedRunner().on("copy", program="nix")
    closure.copy(runner, "/nix/store/x", source=SOURCE, dest=Endpoint("web1", "deploy", port))
    fetch, push = runner.calls
    assert fetch.argv == (*NIX, "copy", "--from", "ssh://root@build", "--no-check-sigs", "/nix/store/x")
    assert fetch.env == {"NIX_SSHOPTS": "-o BatchMode=yes -p 2222"}
    assert push.argv == (*NIX, "copy", "--to", "ssh://deploy@web1", "/nix/store/x")
    assert push.env == {"NIX_SSHOPTS": "-o BatchMode=yes" + (f" -p {port}" if port else "")}


def test_copy_here_to_a_target_checks_signatures_as_usual():
    runner = ScriptedRunner().on("copy", program="nix")
    closure.copy(runner, "/nix/store/x", dest=DEST)
    assert runner.calls[0].line.endswith("copy --to ssh://deploy@web1 /nix/store/x")
