"""Looking at processes and ports the way the tests need: from /proc, zombies counted as gone.

(This sandbox's PID 1 never reaps orphans, so a killed process can linger as a zombie: it is not running.)
"""

from __future__ import annotations

import errno
import os
import socket
import threading
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
    pgid: int
    sid: int
    cmdline: str

    @property
    def running(self) -> bool:
        return self.state not in ("Z", "X")


# --- ports --------------------------------------------------------------------------------------------------
_GIVEN: set[int] = set()
_GIVEN_LOCK = threading.Lock()
# How many ports below the kernel's ephemeral range free_port draws from.
PORT_SPAN = 12000


def _port_range() -> tuple[int, int]:
    """Ports below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default): an outgoing
    connection is never given one of them, so a port found free stays free until its service binds it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(1024, low - PORT_SPAN), low


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def free_port() -> int:
    """A port nothing listens on right now, and never the same one twice in this process.

    Two calls in a row can no longer return one port for two services (binding port 0 twice may). Each
    process walks the range from its own offset, so two test processes rarely even try the same port.
    """
    low, high = _port_range()
    span = high - low
    with _GIVEN_LOCK:
        start = (os.getpid() * 7919 + len(_GIVEN)) % span
        for step in range(span):
            port = low + (start + step) % span
            if port not in _GIVEN and _bindable(port):
                _GIVEN.add(port)
                return port
    raise RuntimeError(f"no free port left in {low}-{high}")


# --- processes ----------------------------------------------------------------------------------------------
def read(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return Proc(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[3]), cmdline.strip())


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


def environ_has(pid: int, entry: str) -> bool:
    """Whether ``NAME=value`` is in the environment process ``pid`` started with (inherited by everything it
    starts, whatever process group or session those make)."""
    try:
        return entry.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def marked(entry: str) -> list[Proc]:
    """Running processes whose environment holds ``entry``: a test's whole tree, orphans included."""
    return [p for p in table() if p.running and p.pid != os.getpid() and environ_has(p.pid, entry)]


def under(directory: Path) -> list[str]:
    """Running processes (this one aside) whose working directory or argv lies under ``directory``: what a
    test started there and left behind, however it detached (own session, parent 1). One line each."""
    root = str(directory.resolve())
    found = []
    for proc in table():
        if not proc.running or proc.pid == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{proc.pid}/cwd")
        except OSError:
            cwd = ""
        if cwd == root or cwd.startswith(root + "/") or root in proc.cmdline:
            found.append(f"{proc.pid} (cwd {cwd}): {proc.cmdline}")
    return found
