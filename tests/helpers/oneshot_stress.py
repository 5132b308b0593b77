"""Stress for scripts/start-oneshot: web dies while ai-server serves. Does the supervisor notice? How fast?

One run: the supervisor starts in a session of its own with two stubs on PATH. ai-server prints a line and
serves (a `sleep` it execs, which the forwarded TERM ends). web prints to stdout and stderr (so the
line-prefixing readers race its death, as in production), waits a few milliseconds so the supervisor is
already waiting, writes the time it dies, and exits 0. The supervisor must then stop ai-server and exit 1.

"paused" runs put tests/helpers/preempt_shim.c in LD_PRELOAD: every process sleeps a little each time it is
about to unblock SIGCHLD, the interleaving a loaded machine produces at `wait -n`'s worst moment. "unpaused"
runs have no shim. Used by tests/unit/test_start_oneshot_stress.py (a bounded number of paused runs, 0 hangs
asserted) and bench/supervisor.py (the figures).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers import procs

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "start-oneshot"
SHIM_SOURCE = Path(__file__).with_name("preempt_shim.c")
# A supervisor still running this long after web died has missed it (the old bug never wakes up at all).
HANG_AFTER = 10.0
PAUSE_US = 5000

# web waits until the supervisor has settled down to wait (asleep in the kernel, and not in the shim's pause,
# for 5 looks in a row: its session id is its pid). Then it closes its output first, so its readers see EOF
# and exit just before it does: the supervisor wakes for them and is still looking around when web dies (in
# production, web's readers usually exit first).
WEB = """#!/usr/bin/env bash
echo "web serving"
echo "web warming up" >&2
read -r -a stat < /proc/$$/stat
supervisor=${stat[5]}
settled=0
for _ in $(seq 1000); do
  wchan=$(< "/proc/$supervisor/wchan") || break
  case $wchan in
    0 | "" | hrtimer_nanosleep) settled=0 ;;
    *) settled=$((settled + 1)) ;;
  esac
  ((settled < 5)) || break
  sleep 0.01
done
exec >&- 2>&-
sleep 0.00$((RANDOM % 10))
printf '%s\\n' "$EPOCHREALTIME" > "$STUB_STATE/web.died"
exit 0
"""
AI_SERVER = """#!/usr/bin/env bash
echo "ai-server serving"
exec sleep 1000
"""


def build_shim(directory: Path) -> Path:
    """Compile the preempt shim with the system C compiler; a missing compiler is an error, not a skip."""
    compiler = shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no `cc` on PATH: the supervisor stress test builds its LD_PRELOAD shim with it")
    shim = directory / "preempt_shim.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(shim), str(SHIM_SOURCE), "-ldl"],
        check=True,
        timeout=120,
    )
    return shim


@dataclass
class Outcome:
    status: int | None  # None: a hang (killed after HANG_AFTER)
    death_to_exit: float | None  # seconds from web's exit to the supervisor's
    left_running: list[str] = field(default_factory=list)
    output: str = ""
    pauses: int | None = None  # how often the shim paused the supervisor (None: no shim)


def _stubs(directory: Path) -> Path:
    bin_dir = directory / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in (("web", WEB), ("ai-server", AI_SERVER)):
        stub = bin_dir / name
        stub.write_text(body)
        stub.chmod(0o755)
    return bin_dir


def _kill_session(sid: int) -> list[str]:
    """SIGKILL whatever still runs in session ``sid``; return what that was."""
    left = [f"{p.pid} {p.cmdline}" for p in procs.session(sid)]
    for proc in procs.session(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    return left


def run_once(directory: Path, script: Path, shim: Path | None) -> Outcome:
    """One run in ``directory`` (emptied first): see the module docstring."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    state = directory / "state"
    state.mkdir()
    env = {
        "PATH": f"{_stubs(directory)}:{os.environ['PATH']}",
        "STUB_STATE": str(state),
        "HOME": str(directory),
        "ONESHOT_GRACE_SECONDS": "5",
    }
    if shim is not None:
        env |= {
            "LD_PRELOAD": str(shim),
            "PREEMPT_SHIM_US": str(PAUSE_US),
            "PREEMPT_SHIM_COUNT_FILE": str(directory / "pauses"),
        }
    log = directory / "output"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", str(script)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # A pidfd wakes us the moment the supervisor exits (Popen.wait polls, up to 50 ms late).
    pidfd = os.pidfd_open(process.pid)
    try:
        died = state / "web.died"
        started = time.monotonic()
        died_seen: float | None = None  # the hang clock starts when web has died
        exited_at: float | None = None
        while exited_at is None:
            if select.select([pidfd], [], [], 0.05)[0]:
                exited_at = time.time()
                break
            now = time.monotonic()
            if died_seen is None and died.exists():
                died_seen = now
            # Bounds: HANG_AFTER from web's death; six times that in all (web never died: a broken run).
            if (died_seen is not None and now - died_seen > HANG_AFTER) or now - started > 6 * HANG_AFTER:
                break
    finally:
        os.close(pidfd)
    if exited_at is None:
        _kill_session(process.pid)  # what a hang leaves is the hang's, not counted again as left running
        process.wait(10)
        return Outcome(None, None, [], log.read_text(errors="replace"), _pauses(directory, shim))
    status = process.wait(10)
    # Whatever the supervisor started must be gone once it has exited (a SIGKILL takes a moment to land).
    with contextlib.suppress(AssertionError):
        procs.wait_until(lambda: not procs.session(process.pid), 3, "the session to empty")
    left = _kill_session(process.pid)
    death = float(died.read_text()) if died.exists() else None
    latency = None if death is None else exited_at - death
    return Outcome(status, latency, left, log.read_text(errors="replace"), _pauses(directory, shim))


def _pauses(directory: Path, shim: Path | None) -> int | None:
    """The shim's count, written when the supervisor exits (0 if it never did: a hang was killed)."""
    if shim is None:
        return None
    count = directory / "pauses"
    return int(count.read_text()) if count.exists() else 0


@dataclass
class Tally:
    runs: int = 0
    hangs: int = 0
    wrong_status: list[int | None] = field(default_factory=list)
    left_running: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    unpaused_runs: int = 0  # runs with the shim loaded in which it never paused the supervisor
    first_failure: str = ""

    def add(self, outcome: Outcome) -> None:
        self.runs += 1
        failed = False
        if outcome.status is None:
            self.hangs += 1
            failed = True
        elif outcome.status != 1:
            self.wrong_status.append(outcome.status)
            failed = True
        if outcome.left_running:
            self.left_running += outcome.left_running
            failed = True
        if outcome.death_to_exit is not None:
            self.latencies.append(outcome.death_to_exit)
        if outcome.pauses == 0 and outcome.status is not None:
            self.unpaused_runs += 1
        if failed and not self.first_failure:
            self.first_failure = outcome.output

    @property
    def ok(self) -> bool:
        return not (self.hangs or self.wrong_status or self.left_running)

    def summary(self) -> str:
        return (
            f"{self.runs} runs: {self.hangs} hangs, wrong exit statuses {self.wrong_status}, "
            f"left running {self.left_running}"
        )


def stress(directory: Path, runs: int, *, paused: bool, script: Path = SCRIPT) -> Tally:
    """``runs`` runs one after the other, with the preempt shim when ``paused``."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = build_shim(directory) if paused else None
    tally = Tally()
    for index in range(runs):
        tally.add(run_once(directory / f"run{index % 2}", script, shim))
    return tally
