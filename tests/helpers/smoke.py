"""Helpers of the smoke tests (kept out of conftest.py so test modules can import them).

A service of the closure runs in its own process group inside the test run's session, its environment
marked with an id of its own: whatever it starts (start-oneshot gives each child a process group of its
own) carries the mark, so the test finds it all, orphans included. Nothing may outlive the test run:
teardown kills what is left, ``stop_on_signals`` does the same when the run itself is stopped (SIGINT,
SIGTERM, SIGHUP), and a runner that KILLs the run's session (nixfly's, after a Ctrl-C) takes the services
with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex
from types import FrameType
from typing import TypeVar

from helpers import procs

REPO_ROOT = Path(__file__).resolve().parents[2]
MARK = "NIXFLY_SMOKE_SERVICE"
T = TypeVar("T")


def result_dir() -> Path:
    """$NIXFLY_RESULT, else <repo>/result."""
    configured = os.environ.get("NIXFLY_RESULT")
    return Path(configured) if configured else REPO_ROOT / "result"


def wait_until(condition: Callable[[], T], timeout: float, what: str) -> T:
    """``procs.wait_until``; on timeout the failure carries the output of every live service (what a
    service printed is usually why it never answered)."""
    try:
        return procs.wait_until(condition, timeout, what, every=0.1)
    except AssertionError as exc:
        shown = "".join(service.report() for service in LIVE)
        print(shown, file=sys.stderr)
        raise AssertionError(f"{exc}{shown}") from None


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def request(url: str, data: bytes | None = None, timeout: float = 10) -> Reply:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return Reply(response.status, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read())


def answer_or_none(url: str) -> Reply | None:
    try:
        return request(url, timeout=2)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


class Service:
    """A command from the closure, in a process group of its own, output captured in files."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.argv = argv
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        self.mark = f"{MARK}={token_hex(8)}"
        name, value = self.mark.split("=", 1)
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                argv,
                env={**env, name: value},
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                process_group=0,
            )
        self.pid = self.process.pid
        LIVE.append(self)

    @property
    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def report(self) -> str:
        """What a failing test shows of this service: its command and everything it printed."""
        return f"\n--- {' '.join(self.argv)} (pid {self.pid}) printed:\n{self.output or '(nothing)'}"

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout}s; output:\n{self.output}") from None

    def live_processes(self) -> list[tuple[int, int, str]]:
        """(pid, ppid, command line) of every running process this service started, itself included."""
        return [(p.pid, p.ppid, p.cmdline) for p in procs.marked(self.mark)]

    def kill_everything(self) -> None:
        for pid, _, _ in self.live_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(10)
        with contextlib.suppress(ValueError):
            LIVE.remove(self)


# Services started in this process and not yet killed (for wait_until's report and the signal handler).
LIVE: list[Service] = []


def kill_all() -> None:
    for service in list(LIVE):
        service.kill_everything()


def stop_on_signals() -> None:
    """When the test run itself is told to stop, stop its services first, then go the signal's way."""

    def handler(signum: int, frame: FrameType | None) -> None:
        kill_all()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)
