"""Integration tests run the real `inv` tasks as a user would: in a fresh git checkout of this repository,
with the flyctl simulator first on PATH and its health server standing in for https://<app>.fly.dev."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.project import Project, simulated
from helpers.project import fake_result as stand_in_result


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with simulated(tmp_path) as made:
        yield made


@pytest.fixture
def fake_result(project: Project) -> Path:
    """A stand-in ./result for tests passing --skip-build --skip-smoke."""
    return stand_in_result(project)
