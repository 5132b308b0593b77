"""Fixtures of the flyctl simulator's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flyctl_sim import control
from helpers.sim import APP, HTTP_CHECKS, IMAGE, ok, write_toml


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return control.init(tmp_path / "flyhome")


@pytest.fixture
def deployed(home: Path, tmp_path: Path) -> Path:
    """An app deployed once (healthy; http_service with a check, so TWO machines) from tmp_path/app."""
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n[env]\nMODE = "prod"\n{HTTP_CHECKS}')
    ok(home, "deploy", cwd=workdir)
    return workdir


@pytest.fixture(autouse=True)
def _no_real_fly_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in [k for k in os.environ if k.startswith("FLY_") or k == "FLYCTL_SIM_LATENCY"]:
        monkeypatch.delenv(key)
    yield
