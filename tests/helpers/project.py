"""What the test suites share: where the repository is, the offline Nix flags, and the harness that runs
`inv` in a fresh checkout against the flyctl simulator."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flyctl_sim import control

REPO = Path(__file__).resolve().parents[2]


def offline_nix_options() -> str:
    """tests/nix/README.md's flags: no sandbox, no binary cache, no registry, the shim as nixpkgs."""
    shim = REPO / "tests" / "nix" / "nixpkgs-shim"
    registry = REPO / "tests" / "nix" / "flake-registry.json"
    return (
        "--option sandbox false --option substituters '' --option build-users-group '' "
        f"--option flake-registry {registry} --override-input nixpkgs path:{shim} "
        f"--override-input nixpkgs-flyctl path:{shim}"
    )


CANARY = {
    "CLAUDE_ACCESS_TOKEN": "canary-claude-7f3a9c1e",
    "GH_TOKEN": "canary-gh-2b8d4e6f",
}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "nixfly tests",
    "GIT_AUTHOR_EMAIL": "tests@nixfly.invalid",
    "GIT_COMMITTER_NAME": "nixfly tests",
    "GIT_COMMITTER_EMAIL": "tests@nixfly.invalid",
}


def require(tool: str) -> str:
    """Integration tests need real tools; a missing one is a failure, never a skip."""
    found = shutil.which(tool)
    if not found:
        pytest.fail(f"{tool} is not installed: .ci/run installs it (see docs/development.md)")
    return found


@dataclass
class Project:
    root: Path
    sim: Path
    env: dict[str, str]

    def inv(
        self, *args: str, timeout: float = 600, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )

    def flyctl_calls(self) -> list[dict]:
        return control.calls(self.sim)

    def commands(self) -> list[str]:
        """The canonical flyctl commands run so far, in order (e.g. "apps create")."""
        return [c.get("command") or "" for c in self.flyctl_calls()]


def base_yaml(health_url: str) -> str:
    """invoke.yaml of a simulated project: Fly's builder (these tests are about the Fly flow, not the image;
    test_image_builder.py covers the default, Nix-built image), short health waits, both modes checked at
    ``health_url``."""
    return (
        "nixfly:\n"
        "  builder: nixpacks\n"
        # No registry unless a test starts one (helpers.registry): a nixpacks release's receipt is then
        # refused at once (a closed port), never sent to the real registry.fly.io.
        '  registry: "127.0.0.1:9"\n'
        "  health:\n    timeout: 6\n    interval: 0.2\n    max_interval: 0.5\n    http_timeout: 2\n"
        "  modes:\n"
        f'    integrated:\n      health_url: "{health_url}"\n'
        f'    ai-server-only:\n      health_url: "{health_url}"\n'
    )


@contextmanager
def simulated(base: Path, **env: str) -> Iterator[Project]:
    """A fresh git checkout of this repository under ``base``, a fresh simulated Fly account and its health
    server standing in for https://<app>.fly.dev; ``env`` is added to the environment `inv` runs in."""
    root = base / "checkout"
    root.mkdir()
    copy_checkout(root)
    sim = control.init(base / "sim")
    server = control.start_health_server(sim)
    (root / "invoke.yaml").write_text(base_yaml(server.url_template))
    (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in CANARY.items()))
    environment = {
        **control.env(sim),
        **GIT_ENV,
        "NO_COLOR": "1",
        "NIXFLY_NIX_OPTIONS": os.environ["NIXFLY_NIX_OPTIONS"],
        # Keep the developer's own credentials out of the test.
        **{k: "" for k in ("GOOGLE_APPLICATION_CREDENTIALS", "CURSOR_AUTH_FILE", *CANARY)},
        **env,
    }
    try:
        yield Project(root, sim, environment)
    finally:
        server.stop()


def built_result(project: Project) -> Path:
    """A real ./result (`inv build`): an image step checks that the image it pushes holds this closure."""
    result = project.inv("build")
    assert result.returncode == 0, result.stderr
    return (project.root / "result").resolve()


def fake_result(project: Project) -> Path:
    """A stand-in ./result (and ./result-ai-server) for runs with --skip-build --skip-smoke: the pipeline
    only reads the path."""
    store = project.root.parent / "store" / "0123456789abcdfghijklmnpqrsvwxyz-oneshot-integrated"
    (store / "bin").mkdir(parents=True)
    for link in ("result", "result-ai-server"):
        (project.root / link).symlink_to(store)
    return store


def steps(result: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """``inv deploy --json``'s summary as step → (status, detail); a step run twice (a rollback's verify)
    keeps its last record."""
    summary: dict[str, Any] = json.loads(result.stdout)
    return {s["step"]: (s["status"], s["detail"]) for s in summary["steps"]}


def copy_checkout(dest: Path) -> None:
    """What a fresh clone has: the files git tracks (or would track), committed in a new repository. Every
    checkout in a test process is a copy of the same one, made once (``_committed_checkout``): the copy is a
    fraction of the cost of copying file by file and committing again, which each integration test paid."""
    shutil.copytree(_committed_checkout(), dest, symlinks=True, dirs_exist_ok=True)


@functools.cache
def _committed_checkout() -> Path:
    """The repository's files (tests/integration aside) committed in a new repository, in a private temporary
    directory removed when the test process ends. The tree does not change while tests run."""
    dest = Path(tempfile.mkdtemp(prefix="nixfly-checkout-"))
    atexit.register(shutil.rmtree, dest, ignore_errors=True)
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listing.split("\0")):
        source = REPO / name
        if not source.exists() or name.startswith("tests/integration/") or "__pycache__" in name:
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main", str(dest)], check=True, env=env)
    subprocess.run(["git", "-C", str(dest), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(dest), "commit", "-q", "-m", "fixture"], check=True, env=env)
    return dest
