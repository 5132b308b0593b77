"""Smoke tests of a built result: the pytest suite in tests/smoke, pointed at the result by NIXFLY_RESULT.

Used by the deploy pipeline and by ``nox -s smoke``. A pass is remembered per store path, so an unchanged
closure is not smoke-tested twice. A failure names each failing test, with the tail of its part of pytest's
report, in the step's row and (as the step's table) in ``--json``: read from pytest's own text report (its
short summary and its FAILURES/ERRORS sections), the same here and on a build host over SSH.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from nixfly.errors import NixflyError
from nixfly.files import write_atomic
from nixfly.pipeline import Table
from nixfly.runner import REDACT, Completed, Runner, failure_line

# How much of each failing test's report the table keeps: the end holds the assertion and captured output.
TAIL_LINES = 15
TAIL_LINE_CHARS = 200


def record_file(state_dir: Path) -> Path:
    return state_dir / "smoke-passed.json"


def passed_before(state_dir: Path, store_path: str) -> bool:
    try:
        return store_path in json.loads(record_file(state_dir).read_text())
    except (OSError, json.JSONDecodeError, TypeError):
        return False


def remember(state_dir: Path, store_path: str) -> None:
    path = record_file(state_dir)
    try:
        known = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        known = []
    # Keep the last few: old closures get garbage-collected anyway.
    write_atomic(
        path, json.dumps([*[p for p in known if p != store_path][-9:], store_path]) + "\n", mode=0o644
    )


def pytest_args(tests: Path, suite: str) -> list[str]:
    """Arguments after ``python``: pytest over ``tests``, limited to this mode's tests (marker ``suite``)."""
    args = ["-m", "pytest", str(tests), "-q", "-p", "no:cacheprovider"]
    return [*args, "-m", suite] if suite else args


def run(runner: Runner, root: Path, result: Path, suite: str) -> None:
    completed = runner.run(
        [sys.executable, *pytest_args(root / "tests" / "smoke", suite)],
        env={"NIXFLY_RESULT": str(result)},
        cwd=root,
        check=False,
    )
    check(completed, "", "fix the app; `nox -s smoke` runs them against ./result and shows them in full")


@dataclass(frozen=True)
class Failure:
    test: str  # pytest's node id, e.g. tests/smoke/test_closure.py::test_layout
    reason: str  # its first error line, e.g. "AssertionError: assert 500 == 200"
    tail: str  # the last lines of the test's section of the report


class SmokeFailed(NixflyError):
    """The smoke tests failed; ``table`` (one row per failing test) goes into the step's record."""

    def __init__(self, message: str, hint: str, failed: list[Failure]) -> None:
        super().__init__(message, hint)
        self.failures = failed
        self.table = Table(
            "failing smoke tests",
            ("test", "reason", "output"),
            tuple((f.test, f.reason, f.tail) for f in failed),
        )


_SUMMARY = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$")
_SECTION = re.compile(r"^_{3,} (?:ERROR at (?:setup|teardown) of )?(.+?) _{3,}$")
_BANNER = re.compile(r"^={3,} .* ={3,}$")
_COUNTS = re.compile(r"\b\d+ (?:failed|passed|errors?|skipped|deselected)\b.* in [\d.]+s")


def failures(report: str) -> list[Failure]:
    """The failing tests in pytest's text report (its default ``-r fE``), with their sections' tails."""
    lines = report.splitlines()
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        header = _SECTION.match(line)
        if header:
            current = sections.setdefault(header.group(1), [])
        elif _BANNER.match(line):
            current = None
        elif current is not None:
            current.append(line)
    found: list[Failure] = []
    for line in lines:
        summary = _SUMMARY.match(line.strip())
        if not summary or any(f.test == summary.group(2) for f in found):
            continue
        test = summary.group(2)
        # A section is headed by the test's name within its file ("Class.test[param]").
        section = sections.get(test.split("::", 1)[-1].replace("::", "."), [])
        tail = [REDACT(line.rstrip())[:TAIL_LINE_CHARS] for line in section if line.strip()][-TAIL_LINES:]
        # The section's first "E   " line: the short summary's message is cut to the terminal's width.
        errors = [line[1:].strip() for line in section if line.startswith("E   ")]
        reason = errors[0] if errors else summary.group(3) or summary.group(1).lower()
        found.append(Failure(test, REDACT(reason)[:TAIL_LINE_CHARS], "\n".join(tail)))
    return found


def check(completed: Completed, where: str, hint: str) -> None:
    """Raise ``SmokeFailed`` naming the failing tests if pytest failed (``where``: " on HOST" or "")."""
    if completed.returncode == 0:
        return
    failed = failures(completed.stdout)
    counts = [m.group(0) for line in completed.stdout.splitlines() if (m := _COUNTS.search(line))]
    said = counts[-1] if counts else failure_line(completed.stderr, completed.stdout)
    message = f"smoke tests failed{where} (exit {completed.returncode}): {said}"
    if failed:
        message += ": " + "; ".join(f"{f.test}: {f.reason}" for f in failed)
    raise SmokeFailed(message, hint, failed)
