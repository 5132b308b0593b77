"""nixfly.nix: nix's argv, its JSON in old and new shapes, and a build skipped when nothing changed."""

from __future__ import annotations

import json

import pytest
from helpers.fakes import Call, ScriptedRunner

from nixfly import nix
from nixfly.errors import CommandError, NixflyError
from nixfly.nix import Nix
from nixfly.runner import Completed

STORE = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-oneshot"


@pytest.fixture(autouse=True)
def options(monkeypatch):
    monkeypatch.setenv("NIXFLY_NIX_OPTIONS", "--option substituters '' --override-input nixpkgs path:/shim")


def test_argv_puts_the_users_options_last():
    assert nix.argv("build", ".#x") == [
        "nix",
        *nix.FEATURES,
        "build",
        ".#x",
        *("--option", "substituters", "", "--override-input", "nixpkgs", "path:/shim"),
    ]
    assert nix.develop_argv(["inv", "build"])[-3:] == ["--command", "inv", "build"]


def test_unparseable_options_are_one_line(monkeypatch):
    monkeypatch.setenv("NIXFLY_NIX_OPTIONS", "--option x 'unclosed")
    with pytest.raises(NixflyError, match="NIXFLY_NIX_OPTIONS cannot be parsed"):
        nix.options()


def test_flake_update_never_writes_an_override_into_the_lock(tmp_path):
    assert nix.without_overrides(["--override-input", "a", "b", "--option", "x", "y"]) == [
        "--option",
        "x",
        "y",
    ]
    runner = ScriptedRunner().on("flake", "update")
    Nix(runner, tmp_path).flake_update()
    assert (
        runner.calls[0].line
        == "--extra-experimental-features nix-command flakes flake update --option substituters "
    )


def test_error_block_starts_at_nixs_error():
    stderr = "building…\nwarning: x\nerror: builder failed\n  last 10 log lines:\n  boom\n"
    assert nix.error_block(stderr) == "error: builder failed\n  last 10 log lines:\n  boom"
    assert nix.error_block("a\nb") == "a\nb"


def test_path_info_before_and_after_nix_2_19():
    old = [
        {"path": "/nix/store/b", "narSize": 1, "closureSize": 2},
        {"path": STORE, "narSize": 3, "closureSize": 4},
    ]
    assert nix.parse_path_info(old, STORE) == (3, 4)
    assert nix.parse_path_info({STORE: {"narSize": 5, "closureSize": 6}}, STORE) == (5, 6)
    assert nix.parse_path_info([], STORE) == (0, 0) and nix.parse_path_info(None, STORE) == (0, 0)


def test_closure_counts_only_valid_paths():
    old = [{"path": "/a", "narSize": 10}, {"path": "/b", "narSize": 5, "valid": False}, "junk"]
    assert nix.parse_closure(old) == (1, 10)
    assert nix.parse_closure({"/a": {"narSize": 10}, "/b": None, "/c": {"narSize": 1}}) == (2, 11)
    assert nix.parse_closure("?") == (0, 0)


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**30, "5.0 GiB"), (2**42, "4096.0 GiB")],
)
def test_human_size(n, text):
    assert nix.human_size(n) == text


def git_checkout(runner: ScriptedRunner, files: str = "flake.nix\0") -> None:
    runner.on("ls-files", program="git", stdout=files)


def built_to(link, store_path):
    """What `nix build --out-link` does: point the link at the output (a directory standing in for it)."""

    def build(call: Call) -> Completed:
        store_path.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(store_path)
        return Completed((), 0)

    return build


def sizes(runner, store_path=STORE):
    info = [{"path": str(store_path), "narSize": 7, "closureSize": 9}]
    runner.on("path-info", program="nix", stdout=json.dumps(info))


def test_a_build_is_recorded_and_not_run_again_while_nothing_changed(tmp_path):
    (tmp_path / "flake.nix").write_text("{ }")
    store = tmp_path / "store" / "0123456789abcdfghijklmnpqrsvwxyz-oneshot"
    runner = ScriptedRunner()
    git_checkout(runner)
    sizes(runner, store)
    runner.answer("build", program="nix", with_=built_to(tmp_path / "result", store))
    first = Nix(runner, tmp_path).build("oneshot", tmp_path / "result")
    assert (first.store_path, first.nar_size, first.closure_size, first.cached) == (str(store), 7, 9, False)
    record = json.loads((tmp_path / ".nixfly" / "build-oneshot.json").read_text())
    assert record["store_path"] == str(store)
    again = Nix(runner, tmp_path).build("oneshot", tmp_path / "result")
    assert again.cached and again.store_path == str(store)
    assert sum(1 for c in runner.calls if "build" in c.argv) == 1
    fresh = Nix(runner, tmp_path).build("oneshot", tmp_path / "result", fresh=True)
    assert not fresh.cached and sum(1 for c in runner.calls if "build" in c.argv) == 2
    (tmp_path / "flake.nix").write_text("{ changed }")
    assert not Nix(runner, tmp_path).build("oneshot", tmp_path / "result").cached


def test_rebuild_and_show_trace_reach_nix(tmp_path):
    runner = ScriptedRunner()
    runner.on("ls-files", program="git", code=128)  # not a git checkout: no record, nix decides
    sizes(runner)
    runner.answer("build", program="nix", with_=built_to(tmp_path / "result", tmp_path / "store" / "x"))
    Nix(runner, tmp_path).build("x", tmp_path / "result", rebuild=True, show_trace=True)
    build = next(c for c in runner.calls if "build" in c.argv)
    assert "--rebuild" in build.argv and "--show-trace" in build.argv
    assert not (tmp_path / ".nixfly").exists()


@pytest.mark.parametrize(
    ("stderr", "hint"),
    [
        ("error: path '/nix/store/x' is not valid", "--rebuild compares with an earlier build"),
        ("error: derivation '/nix/store/x.drv' may not be deterministic", "the same derivation built twice"),
    ],
)
def test_rebuild_failures_name_the_cause(tmp_path, stderr, hint):
    runner = (
        ScriptedRunner()
        .on("ls-files", program="git", code=128)
        .on("build", program="nix", code=1, stderr=stderr)
    )
    with pytest.raises(NixflyError) as info:
        Nix(runner, tmp_path).build("x", tmp_path / "result", rebuild=True)
    assert info.value.message == "nix build .#x failed (exit 1)" and info.value.hint.startswith(hint)


def test_an_offline_failure_points_at_the_offline_setup(tmp_path):
    stderr = "error: unable to download 'https://github.com/x': Couldn't resolve host name"
    runner = (
        ScriptedRunner()
        .on("ls-files", program="git", code=128)
        .on("build", program="nix", code=1, stderr=stderr)
    )
    with pytest.raises(NixflyError, match=r"nix build \.#x failed") as info:
        Nix(runner, tmp_path).build("x", tmp_path / "result")
    assert "NIXFLY_NIX_OPTIONS" in (info.value.hint or "")


def test_nix_missing_is_an_install_hint(tmp_path):
    def not_found(call: Call) -> Completed:
        raise CommandError("nix: command not found", kind="not found", argv=call.argv)

    runner = ScriptedRunner()
    runner.answer("path-info", program="nix", with_=not_found)
    with pytest.raises(NixflyError) as info:
        Nix(runner, tmp_path).sizes(STORE)
    assert (info.value.message, info.value.hint) == ("nix not found on PATH", nix.INSTALL_HINT)


def test_version_and_sizes(tmp_path):
    runner = ScriptedRunner().on("--version", program="nix", stdout="nix (Nix) 2.8.0\n")
    assert Nix(runner, tmp_path).version() == "2.8.0"
    sizes(runner)
    assert Nix(runner, tmp_path).sizes(STORE) == (7, 9)
    runner.on("path-info", program="nix", stdout="not json")
    assert Nix(runner, tmp_path).sizes(STORE) == (0, 0)
    with pytest.raises(NixflyError, match="cannot read"):
        Nix(runner, tmp_path).closure_size(STORE)


def test_deriver_is_read_from_path_info(tmp_path):
    info = [{"path": "/nix/store/a-img.tar.gz", "deriver": "/nix/store/b-img.tar.gz.drv"}]
    runner = ScriptedRunner(tools=["nix"]).on("path-info", stdout=json.dumps(info))
    assert Nix(runner, tmp_path).deriver("/nix/store/a-img.tar.gz") == "/nix/store/b-img.tar.gz.drv"
    none = json.dumps([{"path": "/nix/store/a", "deriver": None}])
    unknown = ScriptedRunner(tools=["nix"]).on("path-info", stdout=none)
    assert Nix(unknown, tmp_path).deriver("/nix/store/a") == ""


# Captured from Nix 2.8.0, `nix flake metadata --json .` in a git checkout (abridged).
METADATA = {
    "path": "/nix/store/0nib1s385fyibf949ks38wxkignzxrsf-source",
    "locked": {"narHash": "sha256-EUlrQ+36o11ye/yJ8SvlwX7Qo2sXVcxhLlEsTTX5Z8I=", "type": "git"},
}


def test_a_pinned_source_is_its_store_copy_named_by_content(tmp_path):
    runner = (
        ScriptedRunner()
        .on("ls-files", program="git")
        .on("flake", "metadata", program="nix", stdout=json.dumps(METADATA))
    )
    ref = Nix(runner, tmp_path).pinned()
    # The hash is percent-encoded: Nix decodes the query, and "+" or "/" must reach it unchanged.
    assert ref == (
        "path:/nix/store/0nib1s385fyibf949ks38wxkignzxrsf-source"
        "?narHash=sha256-EUlrQ%2B36o11ye%2FyJ8SvlwX7Qo2sXVcxhLlEsTTX5Z8I%3D"
    )


@pytest.mark.parametrize(
    "data", [{}, [], {"path": "relative", "locked": {"narHash": "x"}}, {"path": "/nix/store/x", "locked": {}}]
)
def test_metadata_without_path_and_hash_is_an_error(data):
    with pytest.raises(NixflyError, match="named no source path and hash"):
        nix.pinned_ref(data)


def test_builds_and_evaluations_use_the_flake_given(tmp_path):
    store = tmp_path / "store" / "0123456789abcdfghijklmnpqrsvwxyz-oneshot"
    runner = ScriptedRunner()
    runner.on("ls-files", program="git", code=128)
    sizes(runner, store)
    runner.answer("build", program="nix", with_=built_to(tmp_path / "result", store))
    runner.on("eval", program="nix", stdout=f"{store}")
    Nix(runner, tmp_path).build("oneshot", tmp_path / "result", flake="path:/nix/store/s")
    assert "path:/nix/store/s#oneshot" in next(c for c in runner.calls if "build" in c.argv).argv
    assert Nix(runner, tmp_path).out_path("path:/nix/store/s", "oneshot") == str(store)
    assert "path:/nix/store/s#oneshot.outPath" in runner.calls[-1].argv


def test_nothing_is_built_or_pinned_while_git_tracks_a_secrets_file(tmp_path):
    runner = ScriptedRunner(tools=["git"]).on("ls-files", program="git", stdout="flake.nix\0.env\0")
    with pytest.raises(NixflyError, match=r"git tracks secrets files: \.env;"):
        Nix(runner, tmp_path).pinned()
    with pytest.raises(NixflyError, match=r"git rm --cached \.env"):
        Nix(runner, tmp_path).build("x", tmp_path / "result")
    assert all(call.argv[0] == "git" for call in runner.calls)
