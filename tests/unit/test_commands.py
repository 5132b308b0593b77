"""nixfly.commands: the task bodies' own logic (most of it delegates, and is tested where it lands)."""

from __future__ import annotations

import os

from nixfly import commands


def test_clean_removes_build_outputs_and_with_state_the_records(tmp_path, capsys):
    (tmp_path / "result").symlink_to("/nix/store/x")
    (tmp_path / "result-image").symlink_to("/nix/store/y")
    (tmp_path / "web" / "_build" / "dev").mkdir(parents=True)
    (tmp_path / ".nixfly").mkdir()
    commands.clean(tmp_path, tmp_path / ".nixfly", dry_run=True, state=True)
    assert capsys.readouterr().err.splitlines() == [
        "[dry-run] would remove result",
        "[dry-run] would remove result-image",
        "[dry-run] would remove web/_build",
        "[dry-run] would remove .nixfly",
    ]
    assert os.path.lexists(tmp_path / "result")
    commands.clean(tmp_path, tmp_path / ".nixfly", dry_run=False, state=False)
    assert not os.path.lexists(tmp_path / "result") and not (tmp_path / "web" / "_build").exists()
    assert (tmp_path / ".nixfly").exists()
