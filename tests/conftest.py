"""Shared by every test: Nix runs offline against the nixpkgs stand-in unless the caller says otherwise."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from helpers.project import offline_nix_options

from nixfly import runner

# CI exports NIXFLY_NIX_OPTIONS itself; a developer running pytest by hand gets the same offline setup.
os.environ.setdefault("NIXFLY_NIX_OPTIONS", offline_nix_options())

# The tests press Ctrl-C on what they start, and test this process's own Ctrl-C handling. A run started with
# SIGINT ignored (a background job of a shell without job control: `cmd &` in a script, nohup, some CI
# runners) would hand the ignored signal down to every child (nixfly, like any program, leaves an ignored
# Ctrl-C ignored), and every such test would wait out its timeout. Python's own handler here, as in a
# terminal; each child then starts with the default, and pytest-xdist's workers load this file too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _stop_like_ctrl_c(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


# A run stopped by TERM or HUP (`timeout`, a cancelled CI job, a closed terminal) ends as a Ctrl-C does, with
# every fixture's teardown: by default these signals end the process at once, and what the fixtures started
# outside it (the apps released on the test hosts, in sessions of their own) would run on.
for _signum in (signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_signum) is signal.SIG_DFL:
        signal.signal(_signum, _stop_like_ctrl_c)


@pytest.fixture(autouse=True)
def runner_accepts_commands_again() -> Iterator[None]:
    """``stop_all`` (a Ctrl-C path) stops the runner for the rest of the process, as nixfly ends after it;
    tests run many "processes" in this one, so each starts with a runner that has not been stopped."""
    yield
    runner._STOPPING.clear()
