"""nixfly.hosts.across: work on several hosts at once, and their errors said as one."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass

import pytest

from nixfly.errors import NixflyError
from nixfly.hosts.across import each, one_error


@dataclass(frozen=True)
class Named:
    name: str


def hosts() -> list[Named]:
    return [Named(n) for n in ("root@a", "root@b", "root@c")]


def test_each_runs_the_hosts_at_once_and_keeps_their_errors():
    members = hosts()
    # Three threads must meet here: run one host after another, and the barrier breaks (a failure).
    meet = threading.Barrier(3, timeout=30)

    def action(member):
        meet.wait()
        if member.name == "root@b":
            raise NixflyError("cannot reach root@b", "check it")
        return member.name.upper()

    results = each(members, action)
    assert results[0] == "ROOT@A" and results[2] == "ROOT@C"
    assert isinstance(results[1], NixflyError) and results[1].message == "cannot reach root@b"

    def bug(member):
        raise KeyError(member.name)

    with pytest.raises(KeyError):
        each(members, bug)


def test_a_ctrl_c_returns_at_once_without_waiting_for_the_hosts():
    """The pipeline then stops every child process, whichever thread started it (runner.stop_all)."""
    members = hosts()
    started, release = threading.Barrier(len(members), timeout=30), threading.Event()
    main = threading.main_thread().ident
    assert main is not None

    def action(member):
        started.wait()
        if member is members[0]:
            signal.pthread_kill(main, signal.SIGINT)  # what a Ctrl-C does to nixfly
        release.wait(30)
        finished.append(member.name)

    finished: list[str] = []
    # Python's own Ctrl-C handler, whatever an earlier test in this process left installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    begun = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            each(members, action)
        waited = time.monotonic() - begun
        # each() returned while every host was still busy.
        assert finished == [], f"each() returned after {waited:.1f}s; SIGINT's handler was {previous!r}"
    finally:
        release.set()
        signal.signal(signal.SIGINT, previous)


def test_one_error_names_each_host_once():
    a, b = group_members = [type("M", (), {"name": n})() for n in ("root@a", "root@b")]
    single = one_error(
        [(a, NixflyError("cannot reach root@a (port 22): refused", "check sshd"))], 3, "cannot deploy"
    )
    assert str(single) == "cannot deploy: cannot reach root@a (port 22): refused — check sshd"
    both = one_error([(m, NixflyError("nix-env not found")) for m in group_members], 3, "cannot deploy")
    assert (
        both.message == "cannot deploy on 2 of 3 hosts: root@a: nix-env not found; root@b: nix-env not found"
    )
    assert b.name in both.message
