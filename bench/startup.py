"""`inv --list` start-up: nixfly's tasks.py against an Invoke project with one trivial task (target ≤ 1.1x).

    python bench/startup.py [RUNS]        # or: nox -s bench -- bench/startup.py

Invoke never writes bytecode (it sets ``sys.dont_write_bytecode`` unless given ``--write-pyc``), so every
`inv` compiles tasks.py, and every nixfly module that nothing else has compiled. nixfly is measured in the
two states a user meets, each with its own PYTHONPYCACHEPREFIX so whatever this checkout's __pycache__
holds changes nothing: "package compiled" (nixfly's bytecode exists, as after any test run or a wheel
install) and "nothing compiled" (a fresh clone on day one). The standard library and Invoke are compiled
in both, as on any machine that has run Python before.

A third project separates what nixfly costs from what Invoke costs: the same tasks.py with every `nixfly`
module it imports replaced by an empty stand-in, so only Invoke's own work on these tasks and flags remains
(its parser deep-copies every task's flags on each run).

All run alternately (so a busy machine slows each alike), RUNS times (default 21, at least 15), after one
warm-up run each. Reported: the median wall time, and the median CPU time (user + system of the child),
which a busy machine disturbs less. A benchmark reports; it never fails on a time.
"""

from __future__ import annotations

import ast
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ONE_TASK = "from invoke import task\n\n\n@task\ndef hello(c):\n    'Say hello.'\n"
TARGET = 1.1
# Every attribute of a stand-in module is this: an identity decorator for clean_exit, a no-op for guard.
STAND_IN = "def __getattr__(name):\n    return lambda first=None, *args, **kwargs: first\n"


def stand_in_project(root: Path) -> None:
    """tasks.py in ``root`` with the nixfly modules it imports at the top as empty stand-ins."""
    source = (REPO / "tasks.py").read_text()
    (root / "tasks.py").write_text(source)
    package = root / "nixfly"
    package.mkdir()
    (package / "__init__.py").write_text(STAND_IN)
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nixfly."):
            (package / f"{node.module.removeprefix('nixfly.')}.py").write_text(STAND_IN)
        elif isinstance(node, ast.ImportFrom) and node.module == "nixfly":
            for alias in node.names:
                (package / f"{alias.name}.py").write_text(STAND_IN)


def run_once(cwd: Path, env: dict[str, str], *flags: str) -> tuple[float, float]:
    """(wall, cpu) seconds of one `inv --list` in ``cwd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    argv = [sys.executable, "-m", "invoke", *flags, "--list"]
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def caches(tmp: Path, baseline: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Environments for "package compiled" and "nothing compiled": each its own bytecode cache, both
    holding the standard library and Invoke, only the first holding nixfly."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    compiled = {**env, "PYTHONPYCACHEPREFIX": str(tmp / "pyc-compiled")}
    fresh = {**env, "PYTHONPYCACHEPREFIX": str(tmp / "pyc-fresh")}
    run_once(baseline, fresh, "--write-pyc")
    shutil.copytree(fresh["PYTHONPYCACHEPREFIX"], compiled["PYTHONPYCACHEPREFIX"])
    compile_package = [sys.executable, "-m", "compileall", "-q", str(REPO / "nixfly")]
    subprocess.run(compile_package, env=compiled, capture_output=True, check=True)
    return compiled, fresh


def measure(runs: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        baseline, stand_in = Path(tmp, "one-task"), Path(tmp, "stand-in")
        baseline.mkdir()
        (baseline / "tasks.py").write_text(ONE_TASK)
        stand_in.mkdir()
        stand_in_project(stand_in)
        compiled, fresh = caches(Path(tmp), baseline)
        projects = {
            "one-task Invoke project": (baseline, compiled),
            "nixfly's tasks, nixfly modules stubbed": (stand_in, compiled),
            "nixfly, package compiled": (REPO, compiled),
            "nixfly, nothing compiled (fresh clone)": (REPO, fresh),
        }
        for cwd, env in projects.values():
            run_once(cwd, env)  # warm-up: files in the page cache
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in projects}
        for _ in range(runs):
            for name, (cwd, env) in projects.items():
                times[name].append(run_once(cwd, env))
    return {
        name: (statistics.median(w for w, _ in found), statistics.median(c for _, c in found))
        for name, found in times.items()
    }


def main() -> None:
    runs = max(15, int(sys.argv[1])) if len(sys.argv) > 1 else 21
    medians = measure(runs)
    base_wall, base_cpu = medians["one-task Invoke project"]
    print(f"\n## `inv --list` start-up (median of {runs} alternating runs)\n")
    print(f"| project | wall | CPU | wall / one-task (target ≤ {TARGET}x) | CPU / one-task |")
    print("|---|---|---|---|---|")
    for name, (wall, cpu) in medians.items():
        ratios = f"{wall / base_wall:.2f}x | {cpu / base_cpu:.2f}x"
        print(f"| {name} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms | {ratios} |")


if __name__ == "__main__":
    main()
