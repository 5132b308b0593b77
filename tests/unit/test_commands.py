"""nixfly.commands: the task bodies' own logic (most of it delegates, and is tested where it lands)."""

from __future__ import annotations

import json
import os

import pytest
from helpers.fakes import checkout, settings

from nixfly import commands, lock
from nixfly.errors import NixflyError


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


def test_lock_status_and_release(tmp_path, capsys):
    s = settings(checkout(tmp_path))
    commands.lock_status(s)
    assert capsys.readouterr().err == "oneshot: not locked\n"
    s.state_dir.mkdir()
    holder = {
        "who": "ci",
        "host": os.uname().nodename,
        "pid": os.getppid(),
        "since": "t",
        "command": "deploy",
    }
    lock.lock_path(s.state_dir, s.app).write_text(json.dumps(holder))
    commands.lock_status(s)
    assert capsys.readouterr().err.startswith(
        f"oneshot: locked by ci@{os.uname().nodename} (pid {os.getppid()}"
    )
    commands.lock_release(s, force=True)
    assert capsys.readouterr().err.startswith("oneshot: released lock of ci@")
    commands.lock_release(s, force=False)
    assert capsys.readouterr().err == "oneshot: was not locked\n"


def test_a_stale_lock_says_how_to_remove_it(tmp_path, capsys):
    s = settings(checkout(tmp_path))
    s.state_dir.mkdir()
    holder = {"who": "ci", "host": os.uname().nodename, "pid": 2**22 + 7, "since": "t"}
    lock.lock_path(s.state_dir, s.app).write_text(json.dumps(holder))
    commands.lock_status(s)
    assert "STALE lock" in capsys.readouterr().err


def test_the_target_of_a_task_is_closed_afterwards(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-flyctl-here"))  # the reads fail at once, run nothing
    s = settings(checkout(tmp_path))
    with pytest.raises(NixflyError, match="flyctl not found"), commands.target_of(s, "fly") as chosen:
        chosen.observe()  # waits for the login read, which fails: the task fails
    assert chosen.observed is not None and chosen.observed._pool._shutdown  # type: ignore[attr-defined]


def test_a_host_targets_lock_is_shown_and_released_by_the_target(tmp_path, capsys):
    """``--target local`` answers lock.status and lock.release itself: a table row, a refusal, a release."""
    from nixfly.engine import open_target
    from nixfly.runner import here

    s = settings(checkout(tmp_path))
    commands.lock_status(s, target="local")
    assert "| local | free |" in capsys.readouterr().err.replace("  ", " ")
    holder = open_target(s, here(s), "local")
    try:
        holder.claim("deploy --mode integrated --target local", "abc1234")
        commands.lock_status(s, target="local")
        assert "held" in capsys.readouterr().err
        with pytest.raises(NixflyError, match=r"^kept the lock: "):
            commands.lock_release(s, force=False, target="local")
        commands.lock_release(s, force=True, target="local")
        assert "oneshot on local: released the lock of " in capsys.readouterr().err
    finally:
        holder.close()
    commands.lock_release(s, force=False, target="local")
    assert capsys.readouterr().err.endswith("\noneshot on local: was not locked\n")
