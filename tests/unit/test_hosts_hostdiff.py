"""nixfly.hosts.hostdiff: a host's live manifest in one read on it; a group's diff, grouped by closure.

The read runs the real script with this machine's sh and Nix against a profile laid out as nix-env lays it
out (``profile`` → ``profile-N-link`` → a store path added here with a ``bun.lock`` inside).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from helpers.fakes import checkout, settings
from helpers.project import require

from nixfly import sbom
from nixfly.closurediff import diff
from nixfly.errors import NixflyError
from nixfly.hosts import hostdiff
from nixfly.hosts.hostdiff import Live
from nixfly.runner import Runner
from nixfly.sbom import Manifest, StorePath
from nixfly.target import Candidate

BUN_LOCK = """{
  "lockfileVersion": 1,
  "packages": {
    "valibot": ["valibot@%s", "", {}, "sha512-x=="],
  }
}
"""


def stored(tmp_path: Path, name: str, valibot: str) -> str:
    """A store path named ``name`` holding ``ai-server/bun.lock`` (valibot at ``valibot``)."""
    require("nix-store")
    content = tmp_path / name
    (content / "ai-server").mkdir(parents=True)
    (content / "ai-server" / "bun.lock").write_text(BUN_LOCK % valibot)
    added = subprocess.run(["nix-store", "--add", str(content)], capture_output=True, text=True, check=True)
    return added.stdout.strip()


def generation(app_dir: Path, number: int, store_path: str) -> None:
    """nix-env's layout: ``profile-N-link`` → the store path, ``profile`` → the current link."""
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / f"profile-{number}-link").symlink_to(store_path)
    (app_dir / "profile").unlink(missing_ok=True)
    (app_dir / "profile").symlink_to(f"profile-{number}-link")


def test_the_live_generation_is_read_whole_in_one_command(tmp_path):
    live = stored(tmp_path, "oneshot-0.1.0", "1.4.0")
    app_dir = tmp_path / "state" / "oneshot"
    generation(app_dir, 2, stored(tmp_path, "older-0.1.0", "1.3.0"))
    generation(app_dir, 3, live)
    calls: list[tuple[str, ...]] = []

    class Counting(Runner):
        def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
            calls.append(tuple(argv))
            return super().run(argv, **kw)

    read = hostdiff.read(Counting(), PurePosixPath(app_dir), "local")
    assert len(calls) == 1  # the plan's one extra round trip
    assert read is not None and read.generation == 3 and read.store_path == live
    assert read.manifest == sbom.manifest_of(Runner(), live)  # what a read here would give


def test_a_host_without_a_generation_has_no_live_manifest(tmp_path):
    require("nix")
    assert hostdiff.read(Runner(), PurePosixPath(tmp_path / "nothing"), "local") is None


def test_a_profile_link_nix_env_did_not_make_is_refused():
    with pytest.raises(NixflyError, match="not nix-env's"):
        hostdiff.parse("current\n/nix/store/x\n{}", "root@a")


def path(name: str, digest: str = "a") -> StorePath:
    return StorePath(f"/nix/store/{digest * 32}-{name}", "sha256-x", 1024, ())


def manifest(*paths: StorePath) -> Manifest:
    return Manifest(paths[0].path, {p.path: p for p in paths}, {})


def test_hosts_on_the_same_closure_share_one_diff_and_the_others_are_named():
    old = manifest(path("oneshot-0.1.0"), path("hello-2.12"))
    new = manifest(path("oneshot-0.1.0", "c"), path("hello-2.13", "b"))
    read = [
        ("a", Live(3, old)),
        ("b", Live(4, new)),
        ("c", Live(3, old)),
        ("d", None),
        ("e", NixflyError("cannot reach e (port 22): refused")),
    ]
    planned = hostdiff.outcome(new, read, dry=True)
    assert planned.status == "planned"
    assert planned.detail == (
        "a, c: against generation 3: 1 changed, 1 rebuilt; closure 2.0 KiB → 2.0 KiB (+0 B); "
        "b: Nothing changes against generation 4; "
        "d: no live generation (a first deploy: all of it is new); "
        "e: not read (cannot reach e (port 22): refused)"
    )
    assert planned.table is not None
    rows = planned.table.rows
    assert rows[0] == ("a, c (generation 3)", "Version changes:")
    assert ("", "  [U] hello: 2.12 → 2.13") in rows
    assert ("b (generation 4)", "Nothing changes") in rows
    data = planned.table.as_json()["data"]
    assert [g["hosts"] for g in data["groups"]] == [
        [{"host": "a", "generation": 3}, {"host": "c", "generation": 3}],
        [{"host": "b", "generation": 4}],
    ]
    assert data["groups"][0]["diff"] == diff(old, new).as_json()
    assert data["first_deploy"] == ["d"]
    assert data["unread"] == [{"host": "e", "error": "cannot reach e (port 22): refused"}]


def test_without_a_build_here_there_is_nothing_to_compare():
    skipped = hostdiff.outcome("nothing to compare: no build yet", [], dry=False)
    assert (skipped.status, skipped.detail) == ("skipped", "nothing to compare: no build yet")


def test_a_store_path_here_is_what_is_compared(tmp_path):
    s = settings(checkout(tmp_path))
    assert hostdiff.candidate_manifest(s, Runner(), Candidate()) == "nothing to compare: no build yet"
    elsewhere = "/nix/store/" + "0" * 32 + "-built-on-another-host"
    said = hostdiff.candidate_manifest(s, Runner(), Candidate(store_path=elsewhere))
    assert said == f"nothing to compare: {elsewhere} was built elsewhere and is not in this machine's store"
    assert not os.path.exists(elsewhere)


def test_nix_off_the_sessions_path_is_found_where_installers_put_it(tmp_path):
    """An SSH session's PATH often lacks Nix (single-user installs add it in ~/.profile): the read looks
    where the remote runner looks. Here PATH holds only sh, readlink and cat; Nix is in ~/.nix-profile/bin."""
    live = stored(tmp_path, "oneshot-0.1.0", "1.4.0")
    app_dir = tmp_path / "state" / "oneshot"
    generation(app_dir, 1, live)
    tools, profile = tmp_path / "tools", tmp_path / "home" / ".nix-profile" / "bin"
    tools.mkdir()
    profile.mkdir(parents=True)
    for tool in ("sh", "readlink", "cat"):
        (tools / tool).symlink_to(require(tool))
    for tool in ("nix", "nix-store"):
        (profile / tool).symlink_to(require(tool))

    class Bare(Runner):
        def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
            env = {"PATH": str(tools), "HOME": str(tmp_path / "home")}
            return super().run([require("sh"), *argv[1:]], env=env, **kw)

    read = hostdiff.read(Bare(), PurePosixPath(app_dir), "local")
    assert read is not None and read.store_path == live and read.manifest.packages
