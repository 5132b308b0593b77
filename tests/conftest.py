"""Shared by every test: Nix runs offline against the nixpkgs stand-in unless the caller says otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from helpers.project import offline_nix_options

from nixfly import runner

# CI exports NIXFLY_NIX_OPTIONS itself; a developer running pytest by hand gets the same offline setup.
os.environ.setdefault("NIXFLY_NIX_OPTIONS", offline_nix_options())


@pytest.fixture(autouse=True)
def runner_accepts_commands_again() -> Iterator[None]:
    """``stop_all`` (a Ctrl-C path) stops the runner for the rest of the process, as nixfly ends after it;
    tests run many "processes" in this one, so each starts with a runner that has not been stopped."""
    yield
    runner._STOPPING.clear()
