"""nixfly.hosts.releases: a host's generations and their receipts, read in one command on the host.

The read runs the real script with this machine's sh and nix-env, on a profile made by nix-env itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from helpers.fakes import checkout, settings
from helpers.project import require

from nixfly import receipt
from nixfly.engine import open_target
from nixfly.errors import NixflyError
from nixfly.hosts import receipts, releases
from nixfly.hosts.host import Host
from nixfly.runner import Runner


def stored(tmp_path: Path, name: str, valibot: str = "") -> str:
    """A store path named ``name``; with ``valibot``, holding a ``bun.lock`` that pins it at that version."""
    require("nix-store")
    content = tmp_path / name
    content.mkdir()
    (content / "version").write_text(name)
    if valibot:
        pinned = {"valibot": [f"valibot@{valibot}", "", {}, "sha512-x=="]}
        (content / "bun.lock").write_text(json.dumps({"lockfileVersion": 1, "packages": pinned}))
    return subprocess.run(
        ["nix-store", "--add", str(content)], capture_output=True, text=True, check=True
    ).stdout.strip()


def kept(generation: int, store_path: str) -> receipt.Receipt:
    return receipt.Receipt(
        app="oneshot",
        mode="integrated",
        target="ssh://root@a",
        release=generation,
        revision="8601514",
        dirty=True,
        closure=store_path,
        sbom_digest="sha256:ab",
        smoke=receipt.Smoke(store_path, "passed", "tests/smoke -m integrated"),
        started_at="2026-12-06T11:00:00Z",
        finished_at="2026-12-06T11:01:00Z",
    )


def test_each_generation_comes_with_its_receipt_newest_first_in_one_command(tmp_path):
    require("nix-env")
    app_dir = tmp_path / "state" / "oneshot"
    app_dir.mkdir(parents=True)
    one, two = stored(tmp_path, "v1"), stored(tmp_path, "v2")
    for path in (one, two):
        subprocess.run(["nix-env", "--profile", str(app_dir / "profile"), "--set", path], check=True)
    receipts.write(Host("local", Runner(), PurePosixPath(tmp_path)), PurePosixPath(app_dir), kept(2, two))
    calls: list[tuple[str, ...]] = []

    class Counting(Runner):
        def run(self, argv, **kw):  # type: ignore[no-untyped-def, override]
            calls.append(tuple(argv))
            return super().run(argv, **kw)

    found = releases.read(Counting(), PurePosixPath(app_dir), "local")
    assert len(calls) == 1
    assert [(r.generation, r.current, r.store_path) for r in found] == [(2, True, two), (1, False, one)]
    assert found[0].receipt == kept(2, two) and found[1].receipt is None
    assert found[0].as_json()["receipt"]["smoke"]["result"] == "passed"
    assert releases.summary(found[0].receipt) == "8601514+dirty, smoke passed, finished 2026-12-06T11:01:00Z"
    assert releases.summary(None) == "-"


def test_a_host_without_a_profile_has_no_releases(tmp_path):
    assert releases.read(Runner(), PurePosixPath(tmp_path / "none"), "local") == []


def test_a_receipt_another_tool_wrote_is_named():
    text = "   1   2026-12-06 11:00:00   (current)\n\x1flink profile-1-link /nix/store/x\n"
    with pytest.raises(NixflyError, match=r"root@a:profile-1-receipt\.json is not a nixfly receipt"):
        releases.parse(text + "\x1freceipt profile-1-receipt.json\n{}\n", "root@a")


def test_diff_on_a_target_compares_generations_there(tmp_path, capsys):
    s = settings(checkout(tmp_path / "project"))
    one, two = stored(tmp_path, "oneshot-0.1.0", "1.4.0"), stored(tmp_path, "oneshot-0.1.0b", "1.5.0")
    app_dir = s.state_dir / "local" / s.app
    app_dir.mkdir(parents=True)
    for path in (one, two):
        subprocess.run(["nix-env", "--profile", str(app_dir / "profile"), "--set", path], check=True)
    (s.root / "result").symlink_to(two)
    local = open_target(s, Runner(cwd=s.root), "local")
    local.diff("1", "2", as_json=True)
    [shown] = json.loads(capsys.readouterr().out)
    assert shown["hosts"] == [{"host": "local", "from": "generation 1", "to": "generation 2"}]
    assert shown["diff"]["packages"]["npm"]["changed"][0]["name"] == "valibot"
    local.diff("", "", as_json=False)  # the live generation against ./result
    said = capsys.readouterr()
    assert f"local: generation 2 → result ({two} → {two})" in said.err and said.out == "Nothing changes\n"
    with pytest.raises(NixflyError, match="cannot compare: local has no generation 7"):
        local.diff("7", "", as_json=True)
