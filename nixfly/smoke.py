"""Smoke tests of a built result: the pytest suite in tests/smoke, pointed at the result by NIXFLY_RESULT.

Used by the deploy pipeline and by ``nox -s smoke``. A pass is remembered per store path, so an unchanged
closure is not smoke-tested twice.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nixfly.files import write_atomic
from nixfly.runner import Runner


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
    runner.run(
        [sys.executable, *pytest_args(root / "tests" / "smoke", suite)],
        env={"NIXFLY_RESULT": str(result)},
        cwd=root,
        hint="the smoke tests failed against ./result: fix the app; `nox -s smoke` shows them in full",
    )
