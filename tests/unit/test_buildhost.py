"""nixfly.buildhost: building here or on a build host, smoke-testing where it was built, fetching it here."""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import pytest
from helpers.fakes import ScriptedRunner, checkout, settings

from nixfly.buildhost import FLY_SYSTEM, BuildHost, nix_system, open_build_host
from nixfly.errors import NixflyError
from nixfly.nix import Built
from nixfly.remote import Endpoint, RemoteRunner
from nixfly.runner import Runner


@pytest.mark.parametrize(
    ("uname", "system"),
    [
        (("Linux", "x86_64"), "x86_64-linux"),
        (("Darwin", "arm64"), "aarch64-darwin"),
        (("Linux", "AMD64"), "x86_64-linux"),
    ],
)
def test_nix_system_names(uname, system):
    assert nix_system(*uname) == system


def test_here_by_default_there_with_on(tmp_path):
    s = settings(checkout(tmp_path))
    here = open_build_host(s, Runner(cwd=s.root))
    assert (here.endpoint, here.name, here.where) == (None, "here", "")
    assert type(here.runner) is Runner
    there = open_build_host(s, Runner(cwd=s.root), "root@build:2222")
    assert there.endpoint == Endpoint("build", "root", 2222) and there.where == " on root@build:2222"
    assert isinstance(there.runner, RemoteRunner)
    with pytest.raises(NixflyError, match="invalid SSH host"):
        open_build_host(s, Runner(cwd=s.root), "-oProxyCommand=x")


def test_nix_is_required_with_a_hint_for_where_it_is_missing(tmp_path):
    s = settings(checkout(tmp_path))
    with pytest.raises(NixflyError) as here:
        BuildHost(s, ScriptedRunner()).require_nix()
    assert here.value.hint == "install Nix with flakes enabled, or pass --skip-build"
    with pytest.raises(NixflyError, match="nix not found on build"):
        BuildHost(s, ScriptedRunner(), Endpoint("build")).require_nix()


def build_host(tmp_path) -> tuple[BuildHost, ScriptedRunner]:
    """A build host whose SSH transport is scripted; its checkout is already synced."""
    s = settings(checkout(tmp_path))
    runner = ScriptedRunner(tools=["nix"])
    host = BuildHost(s, runner, Endpoint("build"), PurePosixPath("/home/u/checkout"))
    return host, runner


def test_the_build_hosts_system_is_asked(tmp_path):
    host, runner = build_host(tmp_path)
    runner.on("-sm", program="uname", stdout="Linux aarch64\n")
    assert host.system() == "aarch64-linux"
    runner.dry_run = True
    assert host.system() == FLY_SYSTEM  # a dry-run opens no connection: assume what Fly runs


def test_a_remote_build_reads_its_result_there(tmp_path):
    host, runner = build_host(tmp_path)
    runner.on("build", program="nix").on(
        "/home/u/checkout/result", program="readlink", stdout="/nix/store/x-app\n"
    )
    runner.on(
        "path-info", program="nix", stdout='[{"path": "/nix/store/x-app", "narSize": 1, "closureSize": 2}]'
    )
    built = host.build("oneshot-integrated", "result")
    assert built == Built(
        "oneshot-integrated", "/nix/store/x-app", Path("/home/u/checkout/result"), 1, 2, cached=False
    )
    build = next(c for c in runner.calls if "build" in c.argv)
    assert build.cwd == PurePosixPath("/home/u/checkout")
    assert "--out-link" in build.argv and "/home/u/checkout/result" in build.argv


def test_local_only_build_flags_are_refused_on_a_build_host(tmp_path):
    host, _ = build_host(tmp_path)
    with pytest.raises(NixflyError, match="apply to builds on this machine"):
        host.build("x", "result", rebuild=True)


def test_a_remote_build_failure_shows_nixs_error(tmp_path, capsys):
    host, runner = build_host(tmp_path)
    runner.on("build", program="nix", code=1, stderr="noise\nerror: attribute 'x' missing\n")
    with pytest.raises(NixflyError, match=r"nix build \.#x failed on build"):
        host.build("x", "result")
    assert "attribute 'x' missing" in capsys.readouterr().err


def test_smoke_runs_where_it_was_built(tmp_path):
    host, runner = build_host(tmp_path)
    (host.settings.root / "tests" / "smoke").mkdir(parents=True)
    runner.on("pytest", program="python3")
    host.smoke(Built("x", "/nix/store/x", Path("/home/u/checkout/result"), 0, 0, cached=False))
    [call] = runner.calls
    assert call.env == {"NIXFLY_RESULT": "/home/u/checkout/result"} and call.argv[-2:] == ("-m", "integrated")


def test_smoke_here_uses_this_interpreter(tmp_path):
    s = settings(checkout(tmp_path))
    (s.root / "tests" / "smoke").mkdir(parents=True)
    runner = ScriptedRunner().on("pytest", program=Path(sys.executable).name)
    BuildHost(s, runner).smoke(Built("x", "/nix/store/x", s.out_link, 0, 0, cached=False))
    assert runner.calls[0].argv[0] == sys.executable


def test_no_smoke_tests_no_deploy(tmp_path):
    s = settings(checkout(tmp_path))
    with pytest.raises(NixflyError, match="tests/smoke is missing"):
        BuildHost(s, ScriptedRunner()).smoke(Built("x", "/nix/store/x", s.out_link, 0, 0, cached=False))


def test_fetch_copies_from_the_build_host_only(tmp_path):
    host, _ = build_host(tmp_path)
    here = ScriptedRunner().on("copy", program="nix")
    host.fetch(Built("x", "/nix/store/x", Path("r"), 0, 0, cached=False), here)
    assert "--from ssh://build --no-check-sigs" in here.calls[0].line
    BuildHost(host.settings, ScriptedRunner()).fetch(
        Built("x", "/nix/store/y", Path("r"), 0, 0, cached=False), here
    )
    assert len(here.calls) == 1
