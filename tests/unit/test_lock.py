"""nixfly.lock: one deploy per app at a time, a dead holder's lock replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nixfly import lock
from nixfly.errors import NixflyError
from nixfly.files import write_atomic


def test_lock_excludes_a_second_holder_and_names_the_first(tmp_path):
    with lock.held(tmp_path, "oneshot", "abc123", "deploy"):
        holder = lock.read(lock.lock_path(tmp_path, "oneshot"))
        assert holder is not None and holder.pid == os.getpid() and holder.revision == "abc123"
        # A live other process holds it: simulate by rewriting the pid to our parent's.
        path = lock.lock_path(tmp_path, "oneshot")
        data = json.loads(path.read_text())
        data["pid"] = os.getppid()
        path.write_text(json.dumps(data))
        with pytest.raises(NixflyError, match=r"lock held by .*pid"):
            lock.acquire(tmp_path, "oneshot", "def", "deploy")
        path.unlink()
    assert not lock.lock_path(tmp_path, "oneshot").exists()


def test_stale_lock_is_detected_and_replaced(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = lock.lock_path(tmp_path, "oneshot")
    path.write_text(json.dumps({"who": "x", "host": os.uname().nodename, "pid": dead.pid, "since": "t"}))
    holder = lock.read(path)
    assert holder is not None and lock.is_stale(holder)
    lock.acquire(tmp_path, "oneshot", "", "deploy")
    assert lock.read(path).pid == os.getpid()  # type: ignore[union-attr]


def test_release_refuses_a_live_holder_without_force(tmp_path):
    path = lock.lock_path(tmp_path, "oneshot")
    path.write_text(json.dumps({"who": "x", "host": os.uname().nodename, "pid": os.getppid(), "since": "t"}))
    with pytest.raises(NixflyError, match="still running"):
        lock.release(tmp_path, "oneshot")
    assert lock.release(tmp_path, "oneshot", force=True) is not None
    assert not path.exists()


@pytest.mark.parametrize(
    "content",
    [
        '{"pid": "x", "host": "h"}',
        "[1, 2]",
        "null",
        '{"pid": null}',
        '{"pid": 1.5}',
        '{"pid": true}',
        "{",
        "\xff",
    ],
)
def test_a_damaged_lock_is_named_never_taken_and_released_without_force(tmp_path, content):
    path = lock.lock_path(tmp_path, "oneshot")
    path.write_bytes(content.encode("latin-1"))
    holder = lock.read(path)
    assert holder is not None and holder.damaged
    assert not lock.is_stale(holder)  # nobody can tell whose it was
    with pytest.raises(NixflyError, match="the deploy lock of oneshot is a damaged lock file"):
        lock.acquire(tmp_path, "oneshot", "", "deploy")
    assert lock.release(tmp_path, "oneshot") == holder
    assert not path.exists()


def test_a_state_directory_that_is_a_file_is_an_error_not_a_traceback(tmp_path):
    state = tmp_path / ".nixfly"
    state.write_text("not a directory")
    with pytest.raises(NixflyError, match=r"cannot take the deploy lock of oneshot in \.nixfly"):
        lock.acquire(state, "oneshot", "", "deploy")
    with pytest.raises(NixflyError, match="cannot write"):
        write_atomic(state / "record.json", "{}")
