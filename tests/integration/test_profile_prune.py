"""Old local-target generations are pruned with real nix-env: the newest ones and the current one stay."""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

from helpers.project import require

from nixfly.hosts import profile
from nixfly.hosts.host import Host
from nixfly.runner import Runner


def store_paths(tmp_path: Path, count: int) -> list[str]:
    paths = []
    for i in range(count):
        content = tmp_path / f"release-{i}"
        content.mkdir()
        (content / "version").write_text(str(i))
        out = subprocess.run(["nix-store", "--add", str(content)], capture_output=True, text=True, check=True)
        paths.append(out.stdout.strip())
    return paths


def test_prune_keeps_the_newest_and_the_current(tmp_path):
    require("nix-env")
    host = Host("local", Runner(), PurePosixPath(tmp_path))
    prof = PurePosixPath(tmp_path / "profile")
    for path in store_paths(tmp_path, 7):
        profile.set_path(host, prof, path)
    profile.switch(host, prof, 2)  # a rollback made generation 2 current
    deleted = profile.prune(host, prof, keep=3)
    assert deleted == [1, 3, 4]
    left = profile.generations(host, prof)
    assert [g.number for g in left] == [2, 5, 6, 7]
    assert next(g for g in left if g.current).number == 2
    assert profile.prune(host, prof, keep=3) == []  # idempotent
