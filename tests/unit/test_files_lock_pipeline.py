"""Atomic files, the deploy lock, and the pipeline summary."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from nixfly import lock
from nixfly.errors import Interrupted, NixflyError
from nixfly.files import write_atomic
from nixfly.pipeline import Pipeline, done, skipped


def test_write_atomic_keeps_old_content_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    write_atomic(target, "old")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600

    def boom(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(NixflyError, match=r"cannot write .*state\.json: disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


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


def test_pipeline_records_failure_and_not_run_steps(capsys):
    p = Pipeline("t", json_summary=True)

    def fail():
        raise NixflyError("broke")

    with pytest.raises(NixflyError):
        p.run([("a", lambda: done("ok")), ("b", fail), ("c", lambda: skipped("x"))])
    assert [(r.step, r.status) for r in p.records] == [("a", "done"), ("b", "failed"), ("c", "not run")]
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is False and summary["steps"][1]["detail"] == "broke"


def test_pipeline_turns_ctrl_c_into_interrupted():
    p = Pipeline("t", resume_hint="run it again")

    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as info:
        p.run([("a", interrupt), ("b", lambda: done(""))])
    assert info.value.exit_code == 130 and "during a" in str(info.value)
    assert [r.status for r in p.records] == ["interrupted", "not run"]


def test_pipeline_writes_the_github_job_summary(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    Pipeline("deploy integrated → oneshot").run(
        [("build", lambda: done("a | b")), ("smoke", lambda: skipped("x"))]
    )
    text = summary.read_text()
    assert "### deploy integrated → oneshot: ok" in text
    assert "| build | done | a / b |" in text and "| smoke | skipped | x |" in text


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
