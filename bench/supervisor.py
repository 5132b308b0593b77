"""scripts/start-oneshot under stress: does it notice every child's death, and how fast (not a test: it
reports counts and medians, and never fails on a time).

    python bench/supervisor.py [PAUSED_RUNS [UNPAUSED_RUNS [SCRIPT]]]   # 200 200 scripts/start-oneshot

Each run is tests/helpers/oneshot_stress.py's: web exits 0 while ai-server serves; the supervisor must stop
ai-server and exit 1. "paused" runs load the preempt shim (tests/helpers/preempt_shim.c) into the supervisor,
which sleeps 5 ms each time it is about to unblock SIGCHLD: the interleaving in which bash's `wait -n` missed
a death. "unpaused" runs have no shim. SCRIPT lets the same stress run against another version, e.g.
`git show main~5:scripts/start-oneshot > /tmp/old; python bench/supervisor.py 60 60 /tmp/old`.

Reported per mode: hangs (still running 10 s after web died), wrong exit statuses, processes left running,
and the time from web's exit to the supervisor's (median, p90, p99, max). Targets: 0 hangs in ≥ 200 paused
runs; a median ≤ 50 ms unpaused. Paused times are inflated by the shim's own sleeps, and only the unpaused
median is held to the target.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.oneshot_stress import SCRIPT, Tally, stress  # noqa: E402

TARGET_MEDIAN_MS = 50.0
TARGET_PAUSED_RUNS = 200


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(mode: str, tally: Tally) -> None:
    print(f"{mode}: {tally.summary()}")
    if tally.unpaused_runs:
        print(f"  (the shim never paused the supervisor in {tally.unpaused_runs} runs)")
    if tally.latencies:
        ms = [t * 1000 for t in tally.latencies]
        print(
            f"  web's exit -> supervisor's exit: median {statistics.median(ms):.1f} ms, "
            f"p90 {quantile(ms, 0.9):.1f} ms, p99 {quantile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms"
        )


def main(argv: list[str]) -> int:
    if len(argv) > 3 or not all(a.isdigit() for a in argv[:2]):
        print(__doc__, file=sys.stderr)
        return 2
    paused_runs = int(argv[0]) if argv else TARGET_PAUSED_RUNS
    unpaused_runs = int(argv[1]) if len(argv) > 1 else 200
    script = Path(argv[2]).resolve() if len(argv) > 2 else SCRIPT
    print(f"supervisor: {script}")
    with tempfile.TemporaryDirectory(prefix="nixfly-bench-supervisor-") as work:
        unpaused = stress(Path(work) / "unpaused", unpaused_runs, paused=False, script=script)
        report("unpaused", unpaused)
        paused = stress(Path(work) / "paused", paused_runs, paused=True, script=script)
        report("paused", paused)
    median_ms = statistics.median(unpaused.latencies) * 1000 if unpaused.latencies else float("nan")
    no_hangs = paused.runs >= TARGET_PAUSED_RUNS and paused.hangs == 0
    fast = median_ms <= TARGET_MEDIAN_MS
    print(
        f"targets: 0 hangs in >= {TARGET_PAUSED_RUNS} paused runs: {'met' if no_hangs else 'NOT met'}; "
        f"unpaused median <= {TARGET_MEDIAN_MS:.0f} ms: {'met' if fast else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
