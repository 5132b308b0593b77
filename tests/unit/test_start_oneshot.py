"""scripts/start-oneshot, driven for real with stub `web` / `ai-server` executables on PATH.

Each test starts the supervisor in a new session (so its session id is its pid) and checks
the session afterwards: nothing it started may still be running (zombies left to a
non-reaping PID 1 are dead and do not count). Readiness is always polled, never slept for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import procs
from helpers.procs import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "start-oneshot"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# A stub that announces itself on stdout and stderr, records its pid, starts a grandchild
# that must not outlive the supervisor, and exits 0 on TERM/INT.
SERVING = """#!/usr/bin/env bash
echo "$$" > "$STUB_STATE/{name}.pid"
echo "{name} stdout PORT=$PORT AI_SERVER_URL=${{AI_SERVER_URL:-unset}}"
echo "{name} stderr" >&2
printf '{name} no newline at the end'
trap 'echo; echo "{name} got TERM"; exit 0' TERM
trap 'echo; echo "{name} got INT"; exit 0' INT
sleep 1000 &
echo "$!" > "$STUB_STATE/{name}.grandchild"
touch "$STUB_STATE/{name}.ready"
while :; do wait || :; done
"""

# Ignores TERM; only SIGKILL ends it.
IGNORES_TERM = """#!/usr/bin/env bash
trap '' TERM INT
echo "{name} ignoring TERM"
touch "$STUB_STATE/{name}.ready"
while :; do sleep 0.1; done
"""

# Serves until the test creates $STUB_STATE/{name}.die, then exits with {status}.
DIES_ON_DEMAND = """#!/usr/bin/env bash
touch "$STUB_STATE/{name}.ready"
while [ ! -e "$STUB_STATE/{name}.die" ]; do sleep 0.05; done
echo "{name} dying with {status}" >&2
exit {status}
"""


def left_running(sid: int) -> list[str]:
    return [f"{p.pid} {p.state} {p.cmdline}" for p in procs.session(sid)]


class Supervisor:
    def __init__(self, tmp_path: Path, stubs: dict[str, str], env: dict[str, str]) -> None:
        self.state = tmp_path / "state"
        self.state.mkdir()
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for name, body in stubs.items():
            stub = bin_dir / name
            stub.write_text(body)
            stub.chmod(0o755)
        self.stdout_path = tmp_path / "stdout"
        self.stderr_path = tmp_path / "stderr"
        full_env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "STUB_STATE": str(self.state),
            "HOME": str(tmp_path),
            **env,
        }
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [str(SCRIPT)],
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.sid = self.process.pid

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def ready(self, *names: str) -> bool:
        return all((self.state / f"{name}.ready").exists() for name in names)

    def wait_ready(self, *names: str, timeout: float = 10) -> None:
        wait_until(lambda: self.ready(*names), timeout, f"{names} to start")

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"start-oneshot still running after {timeout}s\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            ) from None

    def assert_no_orphans(self) -> None:
        # SIGKILL is asynchronous: give the kernel a moment, but nothing may stay alive.
        try:
            wait_until(
                lambda: not [f"{p.pid} {p.state} {p.cmdline}" for p in procs.session(self.sid)],
                3,
                "the session to empty",
            )
        except AssertionError:
            raise AssertionError(f"left running: {left_running(self.sid)}") from None

    def kill_everything(self) -> None:
        for line in [f"{p.pid} {p.state} {p.cmdline}" for p in procs.session(self.sid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(5)


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Callable[..., Supervisor]]:
    started: list[Supervisor] = []

    def start(stubs: dict[str, str], **env: str) -> Supervisor:
        supervisor = Supervisor(tmp_path, stubs, env)
        started.append(supervisor)
        return supervisor

    yield start
    for supervisor in started:
        supervisor.kill_everything()


def serving(name: str) -> str:
    return SERVING.format(name=name)


BOTH_SERVING = {"web": serving("web"), "ai-server": serving("ai-server")}


def test_prefixes_every_line_and_passes_ports(supervise: Callable[..., Supervisor]) -> None:
    sup = supervise(BOTH_SERVING, WEB_PORT="4100", AI_SERVER_PORT="3100")
    sup.wait_ready("web", "ai-server")
    wait_until(lambda: "[web] web stderr" in sup.stderr, 5, "web's stderr line")
    sup.process.send_signal(signal.SIGTERM)
    assert sup.wait_exit(15) == 0
    stdout, stderr = sup.stdout, sup.stderr
    assert "[web] web stdout PORT=4100 AI_SERVER_URL=http://127.0.0.1:3100" in stdout
    assert "[ai-server] ai-server stdout PORT=3100" in stdout
    assert "[web] web stderr" in stderr
    assert "[ai-server] ai-server stderr" in stderr
    assert "[web] web no newline at the end" in stdout
    for line in stdout.splitlines():
        assert line.startswith(("[web] ", "[ai-server] ")), line
    for line in stderr.splitlines():
        assert line.startswith(("[web] ", "[ai-server] ", "[start-oneshot] ")), line


def test_defaults_and_an_explicit_ai_server_url(supervise: Callable[..., Supervisor]) -> None:
    sup = supervise(BOTH_SERVING, AI_SERVER_URL="http://ai.internal:9999")
    sup.wait_ready("web", "ai-server")
    wait_until(lambda: "[web] web stdout" in sup.stdout, 5, "web's stdout")
    sup.process.send_signal(signal.SIGTERM)
    assert sup.wait_exit(15) == 0
    assert "[web] web stdout PORT=4000 AI_SERVER_URL=http://ai.internal:9999" in sup.stdout
    assert "[ai-server] ai-server stdout PORT=3000" in sup.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_is_forwarded_and_nothing_survives(
    supervise: Callable[..., Supervisor], signum: signal.Signals
) -> None:
    sup = supervise(BOTH_SERVING)
    sup.wait_ready("web", "ai-server")
    grandchildren = [int((sup.state / f"{n}.grandchild").read_text()) for n in ("web", "ai-server")]
    sup.process.send_signal(signum)
    assert sup.wait_exit(15) == 0
    word = signum.name.removeprefix("SIG")
    wait_until(lambda: f"[web] web got {word}" in sup.stdout, 5, "web to log the signal")
    assert f"[ai-server] ai-server got {word}" in sup.stdout
    sup.assert_no_orphans()
    assert not [pid for pid in grandchildren if procs.running(pid)]


def test_a_dying_child_stops_the_other_and_fails(supervise: Callable[..., Supervisor]) -> None:
    sup = supervise(
        {"web": serving("web"), "ai-server": DIES_ON_DEMAND.format(name="ai-server", status=7)},
        ONESHOT_GRACE_SECONDS="5",
    )
    sup.wait_ready("web", "ai-server")
    (sup.state / "ai-server.die").touch()
    assert sup.wait_exit(15) == 7
    assert "[web] web got TERM" in sup.stdout
    assert "[ai-server] ai-server dying with 7" in sup.stderr
    assert "ai-server exited with status 7" in sup.stderr
    sup.assert_no_orphans()


def test_a_child_exiting_zero_still_fails(supervise: Callable[..., Supervisor]) -> None:
    sup = supervise({"web": DIES_ON_DEMAND.format(name="web", status=0), "ai-server": serving("ai-server")})
    sup.wait_ready("web", "ai-server")
    (sup.state / "web.die").touch()
    assert sup.wait_exit(15) == 1
    assert "[ai-server] ai-server got TERM" in sup.stdout
    sup.assert_no_orphans()


def test_a_child_ignoring_term_is_killed_after_the_grace(supervise: Callable[..., Supervisor]) -> None:
    sup = supervise(
        {"web": IGNORES_TERM.format(name="web"), "ai-server": serving("ai-server")},
        ONESHOT_GRACE_SECONDS="1",
    )
    sup.wait_ready("web", "ai-server")
    started = time.monotonic()
    sup.process.send_signal(signal.SIGTERM)
    status = sup.wait_exit(10)
    elapsed = time.monotonic() - started
    assert status != 0
    assert 0.9 <= elapsed < 5, elapsed
    assert "web did not stop within 1s: sending SIGKILL" in sup.stderr
    assert "[ai-server] ai-server got TERM" in sup.stdout
    # The waiter killed with web is no job bash reports ("line N: PID Killed ..."): only our lines.
    for line in sup.stderr.splitlines():
        assert line.startswith(("[web] ", "[ai-server] ", "[start-oneshot] ")), line
    sup.assert_no_orphans()


def test_a_missing_command_is_reported(supervise: Callable[..., Supervisor], tmp_path: Path) -> None:
    sup = supervise({"web": serving("web")}, PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin")
    assert sup.wait_exit(10) == 127
    assert "'ai-server' is not on PATH" in sup.stderr
    sup.assert_no_orphans()


def test_a_bad_grace_value_is_refused(supervise: Callable[..., Supervisor]) -> None:
    sup = supervise(BOTH_SERVING, ONESHOT_GRACE_SECONDS="soon")
    assert sup.wait_exit(10) == 2
    assert "ONESHOT_GRACE_SECONDS must be a whole number" in sup.stderr
