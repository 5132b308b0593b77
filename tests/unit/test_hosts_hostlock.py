"""The per-host deploy lock with its real shell scripts, on a local ``Host`` (they run the same over SSH)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path, PurePosixPath

import pytest

from nixfly.errors import NixflyError
from nixfly.hosts import hostlock
from nixfly.hosts.host import Host
from nixfly.hosts.hostlock import HostLock
from nixfly.runner import Runner


def lock_on(tmp_path: Path, *, dry_run: bool = False) -> HostLock:
    host = Host("local", Runner(dry_run=dry_run), PurePosixPath(tmp_path))
    return HostLock(host, PurePosixPath(tmp_path / "oneshot" / "deploy.lock"), "oneshot on local")


def dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def plant(tmp_path: Path, **holder: object) -> Path:
    """A lock as another deployer leaves it (``holder`` overrides a live holder on this machine)."""
    path = tmp_path / "oneshot" / "deploy.lock"
    path.mkdir(parents=True)
    data = {"who": "ci", "host": os.uname().nodename, "pid": os.getppid(), "since": "t0", "command": "deploy"}
    (path / "holder.json").write_text(json.dumps({**data, **holder}) + "\n")
    return path


def test_taken_once_named_to_the_second_and_given_back(tmp_path):
    first, second = lock_on(tmp_path), lock_on(tmp_path)
    first.acquire("abc1234", "deploy --target web")
    holder, _ = second.read()
    assert holder is not None and holder.pid == os.getpid() and holder.revision == "abc1234"
    assert oct(os.stat(tmp_path / "oneshot" / "deploy.lock" / "holder.json").st_mode & 0o777) == "0o600"
    # The same process again is still "another deploy": a host is deployed to once at a time.
    with pytest.raises(NixflyError) as refused:
        second.acquire("def5678", "deploy")
    assert f"another deploy holds the lock of oneshot on local: {holder.who}@" in str(refused.value)
    assert f"(pid {os.getpid()}, since {holder.since}, git abc1234) running `deploy --target web`" in str(
        refused.value
    )
    second.release()  # not its lock: nothing happens
    assert (tmp_path / "oneshot" / "deploy.lock").is_dir()
    first.release()
    assert not (tmp_path / "oneshot").joinpath("deploy.lock").exists()
    # No temp file left; the empty guard that keeps takers and breakers apart stays.
    assert [p.name for p in (tmp_path / "oneshot").iterdir()] == [".deploy.lock.guard"]


def test_a_stale_lock_is_replaced_with_a_warning(tmp_path, capsys):
    plant(tmp_path, pid=dead_pid())
    mine = lock_on(tmp_path)
    mine.acquire("", "deploy")
    holder, _ = mine.read()
    assert holder is not None and holder.pid == os.getpid()
    assert "removing the stale deploy lock of oneshot on local: ci@" in capsys.readouterr().err


def test_staleness_is_asked_of_the_target_when_the_holder_ran_there(tmp_path, monkeypatch):
    """A holder on the target itself (not this machine): /proc on the target says whether it is gone."""
    monkeypatch.setattr(hostlock.socket, "gethostname", lambda: "the-deployers-laptop")
    lock = lock_on(tmp_path)
    on_target = hostlock.Holder("ci", os.uname().nodename, dead_pid(), "t0", "", "deploy")
    assert lock.stale(on_target)
    assert not lock.stale(hostlock.Holder("ci", os.uname().nodename, os.getppid(), "t0", "", "deploy"))
    # A third machine's process cannot be checked from here or there: never stale.
    assert not lock.stale(hostlock.Holder("ci", "a-third-machine", dead_pid(), "t0", "", "deploy"))


def test_release_by_hand_refuses_a_live_holder_unless_forced(tmp_path):
    plant(tmp_path)
    lock = lock_on(tmp_path)
    with pytest.raises(NixflyError, match=r"belongs to ci@.*still running or cannot be checked"):
        lock.force_release(force=False)
    removed = lock.force_release(force=True)
    assert removed is not None and removed.who == "ci"
    assert lock.force_release(force=False) is None  # not locked any more


def test_a_lock_without_holder_file_is_held_by_an_unknown_holder(tmp_path):
    (tmp_path / "oneshot" / "deploy.lock").mkdir(parents=True)
    lock = lock_on(tmp_path)
    with pytest.raises(NixflyError, match=r"an unknown holder \(no holder file"):
        lock.acquire("", "deploy")
    assert lock.force_release(force=True) == hostlock.UNKNOWN
    lock.acquire("", "deploy")


def test_a_dry_run_takes_nothing(tmp_path, capsys):
    lock = lock_on(tmp_path, dry_run=True)
    lock.acquire("", "deploy")
    lock.release()
    assert not (tmp_path / "oneshot").exists()
    assert "[dry-run] would lock" in capsys.readouterr().err


def test_of_many_breakers_of_one_stale_lock_exactly_one_holds_it(tmp_path, monkeypatch):
    """Released together at a stale lock, each judges it stale and breaks it; the guard makes compare-and-
    remove and take one step each, so no breaker removes the fresh lock another just took. The pause between
    compare and remove widens the window a loaded host leaves (without the guard, two hold the lock)."""
    pause = 'sleep "0.$(($$ % 5))"\nrm -rf "$dir"'  # 0 to 0.4 s, by pid: the breakers finish apart
    assert 'rm -rf "$dir"' in hostlock.BREAK
    monkeypatch.setattr(hostlock, "BREAK", hostlock.BREAK.replace('rm -rf "$dir"', pause))
    plant(tmp_path, pid=dead_pid())
    takers = [lock_on(tmp_path) for _ in range(6)]
    start = threading.Barrier(len(takers))
    won: list[HostLock] = []

    def take(lock: HostLock) -> None:
        start.wait()
        with contextlib.suppress(NixflyError):
            lock.acquire("abc1234", "deploy")
            won.append(lock)

    threads = [threading.Thread(target=take, args=(lock,)) for lock in takers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1
    holder, _ = takers[0].read()
    assert holder is not None and holder.pid == os.getpid()
