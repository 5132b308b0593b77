"""nixfly.lock: one deploy per app at a time, a dead holder's lock replaced."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nixfly import lock, runner
from nixfly.errors import NixflyError
from nixfly.files import write_atomic
from nixfly.runner import Runner


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


# --- many takers of one stale lock -----------------------------------------------------------------------
TAKERS = 6
ROUNDS = 12


def _take(state: str, start: Any, done: Any, results: Any) -> None:
    """One deployer: waits for the others, tries the lock, reports, and stays alive (a live holder)."""
    start.wait()
    try:
        lock.acquire(Path(state), "oneshot", "", "deploy")
        results.put("took")
    except NixflyError as exc:
        results.put(f"refused: {exc.message}")
    done.wait(60)


def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def test_of_many_takers_of_a_stale_lock_exactly_one_holds_it(tmp_path):
    """Processes released together at a stale lock: each round, one takes it and every other one is told
    who holds it (the old read-then-unlink let two hold it in 96 rounds of 100)."""
    context = multiprocessing.get_context("fork")
    path = lock.lock_path(tmp_path, "oneshot")
    for _ in range(ROUNDS):
        path.write_text(
            json.dumps({"who": "x", "host": socket.gethostname(), "pid": _dead_pid(), "since": "t"})
        )
        start, done, results = context.Barrier(TAKERS), context.Event(), context.Queue()
        takers = [
            context.Process(target=_take, args=(str(tmp_path), start, done, results)) for _ in range(TAKERS)
        ]
        for taker in takers:
            taker.start()
        try:
            said = [results.get(timeout=120) for _ in takers]
            holder = lock.read(path)
        finally:
            done.set()
            for taker in takers:
                taker.join(60)
        assert said.count("took") == 1, said
        assert all(s == "took" or "another deploy of oneshot is running" in s for s in said), said
        assert holder is not None and holder.pid in {t.pid for t in takers}
        path.unlink()


# --- a killed holder's commands ---------------------------------------------------------------------------
def test_the_lock_records_the_sessions_of_running_commands(tmp_path):
    path = lock.lock_path(tmp_path, "oneshot")
    with lock.held(tmp_path, "oneshot", "", "deploy"):
        assert lock.read(path).sessions == ()  # type: ignore[union-attr]
        proc = Runner().start(["sleep", "30"])
        try:
            assert lock.read(path).sessions == (proc.pid,)  # type: ignore[union-attr]
        finally:
            runner.stop(proc)
        assert lock.read(path).sessions == ()  # type: ignore[union-attr]
    assert not path.exists()


def test_a_dead_holder_whose_commands_still_run_is_not_stale(tmp_path):
    """After `kill -9` of nixfly its children run on in their own sessions: the lock is not taken over
    (nor released without --force) until they end, and the error names them."""
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    path = lock.lock_path(tmp_path, "oneshot")
    path.write_text(
        json.dumps(
            {
                "who": "x",
                "host": socket.gethostname(),
                "pid": _dead_pid(),
                "since": "t",
                "sessions": [orphan.pid],
            }
        )
    )
    try:
        holder = lock.read(path)
        assert holder is not None and not lock.is_stale(holder)
        with pytest.raises(
            NixflyError, match=rf"still has commands running: .*pid {orphan.pid} \(sleep\)"
        ) as err:
            lock.acquire(tmp_path, "oneshot", "", "deploy")
        assert f"kill -- -{orphan.pid}" in str(err.value)
        with pytest.raises(NixflyError, match="still running"):
            lock.release(tmp_path, "oneshot")
    finally:
        orphan.kill()
        orphan.wait()
    assert lock.is_stale(lock.read(path))  # type: ignore[arg-type]
    lock.acquire(tmp_path, "oneshot", "", "deploy")
    assert lock.read(path).pid == os.getpid()  # type: ignore[union-attr]


@pytest.mark.parametrize("sessions", ['"1"', "[true]", "[0]", '["x"]', "[4294967296]"])
def test_sessions_that_are_not_process_ids_make_a_damaged_lock(tmp_path, sessions):
    path = lock.lock_path(tmp_path, "oneshot")
    path.write_text(f'{{"who": "x", "host": "h", "pid": 5, "since": "t", "sessions": {sessions}}}')
    assert lock.read(path).damaged == "sessions is not a list of process ids"  # type: ignore[union-attr]


def test_the_lock_step_holds_the_lock_until_the_run_ends_then_starts_what_follows(tmp_path):
    """Deploy and scale share this step: ``then`` (the target's reads) starts once the lock is held."""
    from contextlib import ExitStack

    from helpers.fakes import checkout, settings

    s = settings(checkout(tmp_path))
    path = lock.lock_path(s.state_dir, s.app)
    seen: list[bool] = []
    with ExitStack() as stack:
        outcome = lock.step(
            stack, Runner(cwd=s.root), s, "scale --mode integrated", lambda: seen.append(path.exists())
        )
        assert outcome.status == "done" and outcome.detail == f"held by pid {os.getpid()}"
        assert seen == [True] and json.loads(path.read_text())["command"] == "scale --mode integrated"
    assert not path.exists()


def test_a_dry_run_lock_step_takes_no_lock_and_still_starts_what_follows(tmp_path):
    from contextlib import ExitStack

    from helpers.fakes import checkout, settings

    s = settings(checkout(tmp_path), dry_run=True)
    seen: list[str] = []
    with ExitStack() as stack:
        outcome = lock.step(stack, Runner(dry_run=True, cwd=s.root), s, "deploy", lambda: seen.append("read"))
    assert (outcome.status, outcome.detail, seen) == ("planned", "would lock oneshot", ["read"])
    assert not lock.lock_path(s.state_dir, s.app).exists()
