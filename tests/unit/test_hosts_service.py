"""nixfly.hosts.service: the release's process started detached, found again and stopped, by the real script
on this machine (the same script runs over SSH)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from helpers import procs

from nixfly.hosts import service
from nixfly.hosts.host import Host
from nixfly.runner import Runner


@pytest.fixture
def host(tmp_path) -> Host:
    return Host("local", Runner(), PurePosixPath(str(tmp_path)))


def program(tmp_path, body: str) -> PurePosixPath:
    path = tmp_path / "bin" / "app"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return PurePosixPath(str(path))


def paths(tmp_path):
    base = PurePosixPath(str(tmp_path))
    return base / "run" / "app.pid", base / "logs" / "app.log", base / "work"


def test_start_finds_and_stops_a_detached_release(tmp_path, host, monkeypatch):
    monkeypatch.setenv("DEPLOYER_TOKEN", "must-not-leak")
    pidfile, log, work = paths(tmp_path)
    app = program(tmp_path, 'echo "greeting=$GREETING token=${DEPLOYER_TOKEN:-none} cwd=$PWD"\nexec sleep 30')
    pid = service.start(host, pidfile, log, work, app, "export GREETING='hello world'\n")
    try:
        assert pid > 0 and service.pid(host, pidfile) == pid
        assert procs.read(pid) is not None and procs.read(pid).sid == pid  # type: ignore[union-attr]
        text = procs.wait_until(
            lambda: "greeting=" in (t := service.tail(host, log, 5)) and t, 10, "the greeting"
        )
        assert f"greeting=hello world token=none cwd={work}" in text
        assert service.START_MARK in text
        assert (tmp_path / "logs" / "app.log").stat().st_mode & 0o777 == 0o600
    finally:
        said = service.stop(host, pidfile, 2)
    assert said == "stopped"
    assert service.pid(host, pidfile) == 0 and procs.session(pid) == []
    assert service.stop(host, pidfile, 2) == "not running"


def test_a_release_ignoring_term_is_killed_after_the_grace(tmp_path, host):
    pidfile, log, work = paths(tmp_path)
    # The child inherits the ignored TERM. (A loop of short sleeps would race the KILL: a sleep started
    # after the script listed the session survives it, for up to its 0.1 s.)
    app = program(tmp_path, "trap '' TERM\nsleep 30 &\nwait")
    pid = service.start(host, pidfile, log, work, app, "")
    said = service.stop(host, pidfile, 1)
    assert said.startswith("killed after 1s: ") and str(pid) in said
    assert procs.session(pid) == []


def test_a_stale_pidfile_never_names_a_stranger(tmp_path, host):
    pidfile, _, _ = paths(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "app.pid").write_text("1 999999\n")  # pid 1 lives, but started at another time
    assert service.pid(host, pidfile) == 0
    (tmp_path / "run" / "app.pid").write_text("garbage\n")
    assert service.pid(host, pidfile) == 0


def test_a_program_that_is_not_there_is_refused(tmp_path, host):
    pidfile, log, work = paths(tmp_path)
    with pytest.raises(Exception, match="is not an executable"):
        service.start(host, pidfile, log, work, PurePosixPath(str(tmp_path / "missing")), "")


def test_tail_of_a_missing_log_is_empty(tmp_path, host):
    assert service.tail(host, PurePosixPath(str(tmp_path / "none.log")), 5) == ""


def test_a_process_that_left_the_session_is_stopped_too(tmp_path, host):
    """A daemon that calls setsid (like `epmd -daemon`) leaves the release's session: the marker in its
    environment still makes it part of the release."""
    pidfile, log, work = paths(tmp_path)
    app = program(tmp_path, "setsid sleep 300 &\nexec sleep 300")
    pid = service.start(host, pidfile, log, work, app, "")
    procs.wait_until(lambda: any(p.sid != pid for p in _sleeps(tmp_path)), 10, "the daemon's setsid")
    assert service.stop(host, pidfile, 2) == "stopped"
    assert_nothing_left(tmp_path)


def test_a_release_whose_pidfile_is_lost_is_still_found_and_stopped(tmp_path, host):
    pidfile, log, work = paths(tmp_path)
    pid = service.start(host, pidfile, log, work, program(tmp_path, "exec sleep 300"), "")
    (tmp_path / "run" / "app.pid").unlink()
    assert service.pid(host, pidfile) == pid
    with pytest.raises(Exception, match="already running"):
        service.start(host, pidfile, log, work, program(tmp_path, "exec sleep 300"), "")
    assert service.stop(host, pidfile, 2) == "stopped"
    assert service.pid(host, pidfile) == 0
    assert_nothing_left(tmp_path)


def _sleeps(tmp_path) -> list[procs.Proc]:
    found = (procs.read(int(line.split()[0])) for line in procs.under(tmp_path) if "sleep 300" in line)
    return [p for p in found if p is not None]


def assert_nothing_left(tmp_path) -> None:
    """Judged from /proc, not from the pidfile: no process with its cwd or argv under the test's directory."""
    try:
        procs.wait_until(lambda: not procs.under(tmp_path), 5, "the release's processes to end")
    except AssertionError:
        raise AssertionError(f"left running: {procs.under(tmp_path)}") from None


def test_a_start_that_never_gets_its_session_is_killed_not_recorded(tmp_path, host):
    """The failed first deploy that left its release running: a start slow to reach its setsid used to be
    recorded anyway, as a pid with no session yet, i.e. "not running"; stop then did nothing, and the release
    ran on unseen. Now start waits for the session, and past its bound kills the program and fails."""
    pidfile, log, work = paths(tmp_path)
    app = program(tmp_path, "exec sleep 300")
    with pytest.raises(Exception, match="did not get a session of its own within 1s: killed it"):
        service.start(host, pidfile, log, work, app, "sleep 5\n", start_seconds=1)
    assert service.pid(host, pidfile) == 0
    assert_nothing_left(tmp_path)
