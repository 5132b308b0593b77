"""Binary caches: `cachix use/push` argv (a fake cachix on PATH), nix.conf edits, and pushes with real Nix."""

from __future__ import annotations

import base64
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nixfly import cache
from nixfly.errors import NixflyError
from nixfly.nix import Nix, human_size, parse_closure, parse_path_info
from nixfly.runner import Runner

PUBLIC_KEY = "cache.example.org-1:" + base64.b64encode(bytes(range(32))).decode()
SECRET_KEY = "cache.example.org-1:" + base64.b64encode(bytes(range(64))).decode()
URL = "https://cache.example.org"


@pytest.fixture
def cachix_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `cachix` first on PATH; it writes its argv, one per line, to the returned file."""
    record = tmp_path / "cachix-argv"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "cachix"
    script.write_text(
        f"#!{sys.executable}\nimport pathlib, sys\n"
        f"pathlib.Path({str(record)!r}).write_text(''.join(a + '\\n' for a in sys.argv[1:]))\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return record


# --- cachix use --------------------------------------------------------------------------------------------
def test_use_by_name_runs_cachix_use(cachix_argv):
    summary = cache.use(Runner(), name="mycache")
    assert cachix_argv.read_text().splitlines() == ["use", "mycache"]
    assert "mycache" in summary


def test_use_by_name_in_dry_run_runs_nothing(cachix_argv, capsys):
    summary = cache.use(Runner(dry_run=True), name="mycache")
    assert not cachix_argv.exists()
    assert "[dry-run] would run: cachix use mycache" in capsys.readouterr().err
    assert summary.startswith("dry-run:")


def test_missing_cachix_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NixflyError) as info:
        cache.use(Runner(), name="mycache")
    assert info.value.message == "cachix not found on PATH"
    assert "nix develop" in str(info.value) and "nix profile install nixpkgs#cachix" in str(info.value)


@pytest.mark.parametrize("name", ["--help", "-x", "my cache", "a/b", ""])
def test_a_cache_name_is_never_a_flag_or_a_path(cachix_argv, name):
    with pytest.raises(NixflyError):
        cache.use(Runner(), name=name)
    assert not cachix_argv.exists()


# --- nix.conf for any other binary cache -------------------------------------------------------------------
def test_url_and_key_are_added_once(tmp_path):
    conf = tmp_path / "nix.conf"
    conf.write_text("max-jobs = 4")  # no final newline: the added block must not join this line
    first = cache.use(Runner(), url=URL, key=PUBLIC_KEY, nix_conf=conf)
    text = conf.read_text()
    assert text.startswith("max-jobs = 4\n")
    assert f"extra-substituters = {URL}\n" in text
    assert f"extra-trusted-public-keys = {PUBLIC_KEY}\n" in text
    assert "added 2 line(s)" in first
    second = cache.use(Runner(), url=URL + "/", key=PUBLIC_KEY, nix_conf=conf)
    assert conf.read_text() == text
    assert "already" in second


def test_only_what_nix_conf_lacks_is_added(tmp_path):
    conf = tmp_path / "nix.conf"
    conf.write_text(f"substituters = https://cache.nixos.org {URL}/  # ours\n")
    cache.use(Runner(), url=URL, key=PUBLIC_KEY, nix_conf=conf)
    text = conf.read_text()
    assert "extra-substituters" not in text
    assert text.count(PUBLIC_KEY) == 1


def test_a_commented_out_line_does_not_count(tmp_path):
    conf = tmp_path / "nix.conf"
    conf.write_text(f"# extra-substituters = {URL}\n")
    cache.use(Runner(), url=URL, key=PUBLIC_KEY, nix_conf=conf)
    assert f"\nextra-substituters = {URL}\n" in conf.read_text()


def test_dry_run_prints_the_lines_and_writes_nothing(tmp_path, capsys):
    conf = tmp_path / "nix" / "nix.conf"
    summary = cache.use(Runner(dry_run=True), url=URL, key=PUBLIC_KEY, nix_conf=conf)
    err = capsys.readouterr().err
    assert not conf.exists() and not conf.parent.exists()
    assert f"extra-substituters = {URL}" in err and f"extra-trusted-public-keys = {PUBLIC_KEY}" in err
    assert summary.startswith("dry-run:")


def test_new_file_is_0644_and_a_private_one_stays_private(tmp_path):
    fresh = tmp_path / "fresh" / "nix.conf"
    cache.use(Runner(), url=URL, key=PUBLIC_KEY, nix_conf=fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    private = tmp_path / "private.conf"
    private.write_text("access-tokens = github.com=ghp_example\n")
    private.chmod(0o600)
    cache.use(Runner(), url=URL, key=PUBLIC_KEY, nix_conf=private)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_a_symlinked_nix_conf_stays_a_symlink(tmp_path):
    real = tmp_path / "dotfiles" / "nix.conf"
    real.parent.mkdir()
    real.write_text("")
    link = tmp_path / "nix.conf"
    link.symlink_to(real)
    cache.use(Runner(), url=URL, key=PUBLIC_KEY, nix_conf=link)
    assert link.is_symlink() and URL in real.read_text()


@pytest.mark.parametrize(
    ("url", "key", "message"),
    [
        ("ftp://cache.example.org", PUBLIC_KEY, "unsupported scheme"),
        ("cache.example.org", PUBLIC_KEY, "unsupported scheme"),
        ("https://", PUBLIC_KEY, "no host"),
        ("file://relative/dir", PUBLIC_KEY, "absolute path"),
        ("https://a.org\nsubstituters = https://evil.org", PUBLIC_KEY, "not a binary cache URL"),
        ("https://a.org#x", PUBLIC_KEY, "not a binary cache URL"),
        (URL, "", "no public key"),
        (URL, "no-colon", "NAME:BASE64"),
        (URL, "name:", "NAME:BASE64"),
        (URL, ":" + PUBLIC_KEY.split(":")[1], "NAME:BASE64"),
        (URL, "name:not*base64", "not valid base64"),
        (URL, "name:" + base64.b64encode(b"short").decode(), "holds 5 bytes"),
        (URL, "", "no public key"),
    ],
)
def test_bad_urls_and_keys_are_refused_before_anything_is_written(tmp_path, url, key, message):
    conf = tmp_path / "nix.conf"
    with pytest.raises(NixflyError, match=message):
        cache.use(Runner(), url=url, key=key, nix_conf=conf)
    assert not conf.exists()


def test_a_secret_key_is_refused_and_never_echoed(tmp_path):
    with pytest.raises(NixflyError, match="SECRET") as info:
        cache.use(Runner(), url=URL, key=SECRET_KEY, nix_conf=tmp_path / "nix.conf")
    assert SECRET_KEY.split(":")[1] not in str(info.value)
    assert "convert-secret-to-public" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "no cache given"),
        ({"key": PUBLIC_KEY}, "needs the URL"),
        ({"name": "mycache", "url": URL, "key": PUBLIC_KEY}, "not both"),
    ],
)
def test_use_needs_exactly_one_cache(tmp_path, kwargs, message):
    with pytest.raises(NixflyError, match=message):
        cache.use(Runner(), nix_conf=tmp_path / "nix.conf", **kwargs)


def test_user_nix_conf_is_the_one_nix_reads(tmp_path, monkeypatch):
    monkeypatch.delenv("NIX_USER_CONF_FILES", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert cache.user_nix_conf() == tmp_path / "xdg" / "nix" / "nix.conf"
    monkeypatch.setenv("NIX_USER_CONF_FILES", f"{tmp_path}/first.conf:{tmp_path}/second.conf")
    assert cache.user_nix_conf() == tmp_path / "first.conf"


# --- path-info shapes --------------------------------------------------------------------------------------
def test_parse_closure_reads_the_list_form_of_nix_before_2_19():
    data = [
        {"path": "/nix/store/a-top", "narSize": 100, "closureSize": 130},
        {"path": "/nix/store/b-dep", "narSize": 30, "closureSize": 30},
        {"path": "/nix/store/c-gone", "valid": False},
    ]
    assert parse_closure(data) == (2, 130)


def test_parse_closure_reads_the_map_form_of_nix_2_19_and_later():
    data = {
        "/nix/store/a-top": {"narSize": 100, "closureSize": 130},
        "/nix/store/b-dep": {"narSize": 30, "closureSize": 30},
        "/nix/store/c-gone": None,
    }
    assert parse_closure(data) == (2, 130)


def test_parse_closure_of_nothing_is_empty():
    assert parse_closure([]) == (0, 0)
    assert parse_closure({}) == (0, 0)


@pytest.mark.parametrize("kwargs", [{}, {"name": "mycache", "url": URL}])
def test_push_needs_exactly_one_cache(tmp_path, kwargs):
    runner = Runner()
    with pytest.raises(NixflyError, match="exactly one cache"):
        cache.push(runner, Nix(runner, tmp_path), "top", tmp_path / "result", **kwargs)


# --- with real Nix -----------------------------------------------------------------------------------------
def nix_system() -> str:
    machine = platform.machine().lower()
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)
    return f"{machine}-{platform.system().lower()}"


@pytest.fixture
def flake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A flake without inputs whose `top` package has a two-path closure; builds offline in a blink."""
    if shutil.which("nix") is None:
        pytest.fail("these tests need nix on PATH (Debian: apt-get install nix-bin), or `nix develop`")
    # No substituter: the test builds are local and never wait on the network.
    monkeypatch.setenv("NIXFLY_NIX_OPTIONS", "--option substituters ''")
    root = tmp_path / "flake"
    root.mkdir()
    (root / "flake.nix").write_text(
        """{{
  outputs = {{ self }}:
    let
      sh = name: script: derivation {{
        inherit name;
        system = "{system}";
        builder = "/bin/sh";
        # The background sleep dodges Nix 2.8 killing builders that exit at once (NixOS/nix#2176).
        args = [ "-c" (script + "; /bin/sleep 0.2 &") ];
      }};
      dep = sh "nixfly-cache-dep" "echo dependency > $out";
    in {{
      packages."{system}".top = sh "nixfly-cache-top" "echo ${{dep}} > $out";
    }};
}}
""".format(system=nix_system())
    )
    return root


def closure_size(store_path: str) -> int:
    out = subprocess.run(
        ["nix", "--extra-experimental-features", "nix-command", "path-info", "-S", "--json", store_path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse_path_info(json.loads(out), store_path)[1]


@pytest.mark.nix
def test_push_to_a_file_cache_copies_the_whole_closure(flake, tmp_path):
    runner = Runner()
    target = tmp_path / "binary-cache"
    summary = cache.push(runner, Nix(runner, flake), "top", flake / "result", url=f"file://{target}")
    top = os.readlink(flake / "result")
    assert (target / f"{Path(top).name.split('-')[0]}.narinfo").exists()
    assert len(list(target.glob("*.narinfo"))) == 2
    assert summary.startswith("pushed 2 paths")


@pytest.mark.nix
def test_push_to_cachix_passes_the_built_store_path(flake, cachix_argv):
    runner = Runner()
    summary = cache.push(runner, Nix(runner, flake), "top", flake / "result", name="mycache")
    top = os.readlink(flake / "result")
    assert cachix_argv.read_text().splitlines() == ["push", "mycache", top]
    assert "Cachix cache mycache" in summary


@pytest.mark.nix
def test_dry_run_push_shows_count_and_size_and_pushes_nothing(flake, tmp_path, cachix_argv, capsys):
    Nix(Runner(), flake).build("top", flake / "result")
    top = os.readlink(flake / "result")
    size = human_size(closure_size(top))
    capsys.readouterr()
    dry = Runner(dry_run=True)
    target = tmp_path / "binary-cache"
    summary = cache.push(dry, Nix(dry, flake), "top", flake / "result", url=f"file://{target}")
    err = capsys.readouterr().err
    assert summary == f"dry-run: would push 2 paths ({size}) of .#top to file://{target}"
    assert "[dry-run] would run: nix" in err and "build '.#top'" in err and "copy --to" in err
    assert top in err
    assert not target.exists()
    summary = cache.push(dry, Nix(dry, flake), "top", flake / "result", name="mycache")
    assert summary == f"dry-run: would push 2 paths ({size}) of .#top to the Cachix cache mycache"
    assert not cachix_argv.exists()


@pytest.mark.nix
def test_dry_run_push_before_any_build_says_so(flake):
    dry = Runner(dry_run=True)
    summary = cache.push(dry, Nix(dry, flake), "top", flake / "result", url="file:///nowhere")
    assert "nothing built yet" in summary and "inv build" in summary


@pytest.mark.nix
def test_a_nix_conf_in_the_store_is_refused(flake, tmp_path):
    source = tmp_path / "nix.conf"
    source.write_text("max-jobs = 1\n")
    stored = subprocess.run(["nix-store", "--add", str(source)], check=True, capture_output=True, text=True)
    link = tmp_path / "home-manager-nix.conf"
    link.symlink_to(stored.stdout.strip())
    with pytest.raises(NixflyError, match="read-only Nix store") as info:
        cache.use(Runner(), url=URL, key=PUBLIC_KEY, nix_conf=link)
    assert f"extra-substituters = {URL}" in str(info.value)
