"""Integration tests run the real `inv` tasks as a user would: in a fresh git checkout of this repository,
with the flyctl simulator first on PATH and its health server standing in for https://<app>.fly.dev."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flyctl_sim import control
from helpers.project import CANARY, GIT_ENV, Project, copy_checkout


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "checkout"
    root.mkdir()
    copy_checkout(root)
    sim = control.init(tmp_path / "sim")
    server = control.start_health_server(sim)
    (root / "invoke.yaml").write_text(
        "nixfly:\n"
        # These tests are about the Fly flow, not the image: Fly's builder makes it (test_image_builder.py
        # covers the default, Nix-built image).
        "  builder: nixpacks\n"
        "  health:\n    timeout: 6\n    interval: 0.2\n    max_interval: 0.5\n    http_timeout: 2\n"
        "  modes:\n"
        f'    integrated:\n      health_url: "{server.url_template}"\n'
        f'    ai-server-only:\n      health_url: "{server.url_template}"\n'
    )
    (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in CANARY.items()))
    env = {
        **control.env(sim),
        **GIT_ENV,
        "NO_COLOR": "1",
        "NIXFLY_NIX_OPTIONS": os.environ["NIXFLY_NIX_OPTIONS"],
        # Keep the developer's own credentials out of the test.
        **{
            k: ""
            for k in ("GOOGLE_APPLICATION_CREDENTIALS", "CURSOR_AUTH_FILE", "GH_TOKEN", "CLAUDE_ACCESS_TOKEN")
        },
    }
    try:
        yield Project(root, sim, env)
    finally:
        server.stop()


@pytest.fixture
def fake_result(project: Project) -> Path:
    """A stand-in ./result for tests passing --skip-build --skip-smoke (the pipeline only reads the path)."""
    store = project.root.parent / "store" / "0123456789abcdfghijklmnpqrsvwxyz-oneshot-integrated"
    (store / "bin").mkdir(parents=True)
    for link in ("result", "result-ai-server"):
        (project.root / link).symlink_to(store)
    return store
