"""Every `inv …` command line in the docs names a task that exists and flags it accepts: one `inv --help TASK`
per task named, its options column read (no task runs, nothing changes); every `nox -s NAME`, a session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from helpers.docs import CURRENT, accepted_flags, commands, nox_sessions
from helpers.project import REPO


def inv_help(task: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--help", *([task] if task else [])],
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_every_inv_command_in_the_docs_names_a_real_task_and_flags_it_accepts():
    found = commands(CURRENT)
    # The docs' quickstart and task tables alone hold dozens: far fewer means the reader broke.
    assert len(found) > 50
    flags: dict[str | None, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for command in found:
        uses = flags[command.task]
        uses.setdefault("", []).append(command.where)
        for flag in command.flags:
            uses[flag].append(command.where)
    tasks = sorted(flags, key=lambda task: task or "")
    with ThreadPoolExecutor(4) as pool:  # each `inv` mostly waits on imports: a few at once halve the time
        helps = dict(zip(tasks, pool.map(inv_help, tasks), strict=True))
    problems = []
    for task in tasks:
        uses, result = flags[task], helps[task]
        shown = f"inv --help {task}" if task else "inv --help"
        if result.returncode != 0:
            problems.append(f"{shown} failed ({result.stderr.strip()}), named at {', '.join(uses[''])}")
            continue
        known = accepted_flags(result.stdout)
        assert known, f"{shown} lists no options: the help format changed\n{result.stdout}"
        problems += [
            f"{shown} has no {flag}, used at {', '.join(where)}"
            for flag, where in uses.items()
            if flag and flag not in known
        ]
    assert problems == []


def test_a_flag_the_task_lacks_is_caught():
    """The check above cannot pass by reading nothing: a made-up flag of a real task is reported."""
    known = accepted_flags(inv_help("deploy").stdout)
    assert {"--target", "--dry-run", "--no-rollback", "-d"} <= known
    assert "--tagret" not in known


def test_every_nox_session_the_docs_run_exists():
    named = nox_sessions(CURRENT)
    assert {"smoke", "lint", "tests"} <= set(named)
    listing = subprocess.run(
        [sys.executable, "-m", "nox", "-l"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert listing.returncode == 0, listing.stderr
    sessions = {line.split()[1] for line in listing.stdout.splitlines() if line[:2] in ("* ", "- ")}
    assert {name: where for name, where in named.items() if name not in sessions} == {}
