"""Helpers of the smoke tests (kept out of conftest.py so test modules can import them)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers import procs

REPO_ROOT = Path(__file__).resolve().parents[2]


def result_dir() -> Path:
    """$NIXFLY_RESULT, else <repo>/result."""
    configured = os.environ.get("NIXFLY_RESULT")
    return Path(configured) if configured else REPO_ROOT / "result"


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


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
    """A command from the closure, running in its own session, output captured in files."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                argv,
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.sid = self.process.pid

    @property
    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout}s; output:\n{self.output}") from None

    def live_processes(self) -> list[tuple[int, int, str]]:
        return [(p.pid, p.ppid, p.cmdline) for p in procs.session(self.sid)]

    def kill_everything(self) -> None:
        for pid, _, _ in self.live_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(10)
