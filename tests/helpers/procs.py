"""Looking at processes and ports the way the tests need: from /proc, zombies counted as gone.

(This sandbox's PID 1 never reaps orphans, so a killed process can linger as a zombie: it is not running.)
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Proc:
    pid: int
    state: str
    ppid: int
    sid: int
    cmdline: str

    @property
    def running(self) -> bool:
        return self.state not in ("Z", "X")


def free_port() -> int:
    """A port nothing listens on right now (bound to 127.0.0.1 and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return Proc(pid, fields[0], int(fields[1]), int(fields[3]), cmdline.strip())


def table() -> list[Proc]:
    return [p for entry in os.listdir("/proc") if entry.isdigit() and (p := read(int(entry))) is not None]


def running(pid: int) -> bool:
    proc = read(pid)
    return proc is not None and proc.running


def session(sid: int) -> list[Proc]:
    """Running processes of session ``sid`` (a child started with setsid and everything it started)."""
    return [p for p in table() if p.sid == sid and p.running]


def children(ppid: int) -> list[Proc]:
    return [p for p in table() if p.ppid == ppid and p.running]


def wait_until(condition: Callable[[], T], timeout: float, what: str, *, every: float = 0.05) -> T:
    """Poll ``condition`` until it returns something true, and return that; fail after ``timeout`` seconds.

    The suites' one wait loop: a deadline only bounds a wait for something that must happen, it is never what
    a test asserts.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)
