"""nixfly.hosts.target: the host target's own steps and what it says after a Ctrl-C."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from helpers.fakes import ScriptedRunner, checkout, settings

from nixfly import sbom
from nixfly.errors import NixflyError
from nixfly.hosts import hostdiff
from nixfly.hosts.activate import HostRelease, Records
from nixfly.hosts.host import Host, RemoteHost
from nixfly.hosts.target import REMOTE_BASE, HostTarget, _previous_healthy, open_host
from nixfly.remote import Endpoint
from nixfly.runner import Runner
from nixfly.sbom import Manifest, StorePath
from nixfly.target import Candidate, TargetSpec, parse_target

WEB1 = Endpoint("web1", "deploy")


def target(tmp_path, text: str = "local", *, dry_run: bool = False, tools=("nix", "nix-env", "setsid")):
    s = settings(checkout(tmp_path / "checkout"), dry_run=dry_run)
    runner = ScriptedRunner(dry_run=dry_run, tools=tools)
    chosen = HostTarget(s, runner, parse_target(text))
    chosen.host = Host(chosen.host.name, runner, PurePosixPath(str(tmp_path / "state")))
    return chosen, runner


class Build:
    def __init__(self, endpoint=None):
        self.endpoint = endpoint


def test_open_host_here_and_over_ssh(tmp_path):
    s = settings(checkout(tmp_path))
    here = open_host(s, Runner(), TargetSpec("local"))
    assert type(here) is Host and here.base == PurePosixPath(str(s.state_dir.resolve())) / "local"
    there = open_host(s, Runner(), TargetSpec("ssh", WEB1))
    assert isinstance(there, RemoteHost) and there.name == "deploy@web1" and there._base == REMOTE_BASE


def test_preflight_checks_what_runs_the_release(tmp_path):
    chosen, _ = target(tmp_path)
    assert chosen.preflight(Build(), skip_build=False) == ["nix-env on local"]  # built here, runs here
    remote, _ = target(tmp_path / "r", "ssh://deploy@web1")
    assert remote.preflight(Build(), skip_build=False) == ["nix here", "nix-env on deploy@web1"]
    missing, _ = target(tmp_path / "b", tools=("nix", "nix-env"))
    with pytest.raises(NixflyError, match="setsid not found on PATH"):
        missing.preflight(Build(), skip_build=False)
    no_nix, _ = target(tmp_path / "c", "ssh://deploy@web1", tools=("nix-env", "setsid"))
    with pytest.raises(NixflyError, match="nix not found on PATH"):
        no_nix.preflight(Build(), skip_build=False)


def test_a_closure_built_on_the_target_is_not_copied(tmp_path):
    chosen, runner = target(tmp_path, "ssh://deploy@web1")
    outcome = chosen.copy(Candidate("/nix/store/x", built_on=WEB1))
    assert (outcome.status, outcome.detail) == ("skipped", "built on deploy@web1: nothing to copy")
    assert runner.calls == []


def test_a_closure_built_here_is_copied_to_the_host(tmp_path):
    chosen, runner = target(tmp_path, "ssh://deploy@web1")
    runner.on("--check-validity", program="nix-store", code=1)  # the host's store lacks it
    runner.on("copy", program="nix")
    outcome = chosen.copy(Candidate("/nix/store/x"))
    assert outcome.detail == "copied /nix/store/x from here to deploy@web1"
    assert runner.calls[0].line == "--check-validity /nix/store/x"
    assert "copy --to ssh://deploy@web1 /nix/store/x" in runner.calls[1].line


def test_a_host_that_already_holds_the_closure_is_not_copied_to(tmp_path):
    """One nix-store --check-validity over the open connection; a valid path's closure is valid too."""
    chosen, runner = target(tmp_path, "ssh://deploy@web1")
    runner.on("--check-validity", program="nix-store")
    outcome = chosen.copy(Candidate("/nix/store/x"))
    assert (outcome.status, outcome.detail) == ("skipped", "deploy@web1 already holds /nix/store/x")
    assert [call.argv[0] for call in runner.calls] == ["nix-store"]  # no nix copy


def test_a_dry_run_plans_the_copy_and_activation_without_a_build(tmp_path):
    chosen, runner = target(tmp_path, "ssh://deploy@web1", dry_run=True)
    assert chosen.copy(Candidate("")).detail == "would copy the closure from here to deploy@web1"
    assert chosen.activate(Candidate("")).status == "planned"
    assert runner.calls == []


def test_after_ctrl_c_nothing_to_say_before_activation(tmp_path):
    chosen, _ = target(tmp_path)
    assert chosen.interrupted("copy") == ""


def healthy(generation: int, ok: bool = True) -> HostRelease:
    return HostRelease(generation, f"/nix/store/{generation}", {}, [], "d", 4000, ["/"], healthy=ok)


def test_rollback_goes_to_the_last_healthy_generation_before_the_live_one(tmp_path):
    chosen, runner = target(tmp_path)
    runner.on("--list-generations", stdout="   1 d t\n   2 d t\n   3 d t (current)\n")
    records = Records(live=healthy(3), history=[healthy(1), healthy(2, ok=False), healthy(3)])
    assert _previous_healthy(records, chosen.activation) == 1
    assert _previous_healthy(Records(live=healthy(3), history=[healthy(3)]), chosen.activation) == 2
    runner.on("--list-generations", stdout="   3 d t (current)\n")
    with pytest.raises(NixflyError, match="no earlier generation to go back to"):
        _previous_healthy(Records(live=healthy(3)), chosen.activation)


def closure(*names: str) -> Manifest:
    paths = [StorePath(f"/nix/store/{'a' * 32}-{name}", "", 100, ()) for name in names]
    return Manifest(paths[0].path, {p.path: p for p in paths}, {})


def test_a_live_closure_this_store_no_longer_has_is_read_on_the_host(tmp_path, monkeypatch):
    """The plan's diff still names what changes when the live generation's closure was collected here (or
    deployed from another checkout): it is read on the host, as a group's hosts are."""
    chosen, _ = target(tmp_path)
    new = tmp_path / "new"  # what this deploy ships: in this store
    new.mkdir()
    gone = healthy(4)  # /nix/store/4: not in this store
    monkeypatch.setattr(type(chosen.activation), "records", lambda self: Records(live=gone, history=[gone]))
    monkeypatch.setattr(sbom, "manifest_of", lambda runner, path: closure("oneshot-0.2.0"))
    read: list[str] = []

    def on_the_host() -> hostdiff.Live | None:
        read.append(chosen.name)
        return hostdiff.Live(4, closure("oneshot-0.1.0"))

    monkeypatch.setattr(chosen, "read_live", on_the_host)
    outcome = chosen.plan_diff(Candidate(store_path=str(new)))
    assert read == ["local"]
    assert outcome.detail.startswith("against generation 4: 1 changed"), outcome.detail
    assert outcome.table is not None and outcome.table.data["changed"][0]["name"] == "oneshot"

    monkeypatch.setattr(chosen, "read_live", lambda: (_ for _ in ()).throw(NixflyError("connection lost")))
    unread = chosen.plan_diff(Candidate(store_path=str(new)))
    assert (unread.status, unread.detail) == ("skipped", "generation 4 not read on local: connection lost")
