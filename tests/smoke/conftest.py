"""Smoke tests against a BUILT closure: `python -m pytest tests/smoke`.

The closure is `./result` at the repo root (from `nix build .#oneshot-integrated --out-link
result`) or the directory named by NIXFLY_RESULT. A missing closure is a usage error, never a
skip: a smoke run that tested nothing must not look green.

Every service starts in a process group of its own, marked so that all it starts can be found
(helpers/smoke.py); teardown kills whatever is left, and so does a SIGINT, SIGTERM or SIGHUP to the
run itself, so neither a failing test nor a stopped run leaves anything running. Readiness is polled
against a deadline, and a timeout shows what the services printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.smoke import Service, result_dir, stop_on_signals


def pytest_configure(config: pytest.Config) -> None:
    stop_on_signals()
    path = result_dir()
    # `-m ai_server`: the ai-server-only closure (bin/ai-server); everything else needs the integrated one.
    needed = "ai-server" if config.option.markexpr == "ai_server" else "start-oneshot"
    if not (path / "bin" / needed).exists():
        raise pytest.UsageError(
            f"no built closure at {path} (NIXFLY_RESULT={os.environ.get('NIXFLY_RESULT', '<unset>')}).\n"
            "Build it first, e.g.\n"
            '  eval "nix build .#oneshot-integrated --out-link result $NIXFLY_NIX_OPTIONS"\n'
            f"or point NIXFLY_RESULT at a built output with bin/{needed}."
        )


@pytest.fixture(scope="session")
def result() -> Path:
    return result_dir().resolve()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """launch(argv, **env) runs a command of the closure with a clean, explicit environment."""
    services: list[Service] = []

    def start(argv: list[str], **extra_env: str) -> Service:
        workdir = tmp_path / f"service-{len(services)}"
        workdir.mkdir()
        (workdir / "tmp").mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "TMPDIR": str(workdir / "tmp"),
            "LANG": "C.UTF-8",
            **extra_env,
        }
        service = Service(argv, env, workdir)
        services.append(service)
        return service

    yield start
    for service in services:
        service.kill_everything()
