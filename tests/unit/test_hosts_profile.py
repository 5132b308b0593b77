"""nixfly.hosts.profile: releases as nix-env generations of a profile."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from helpers.fakes import ScriptedRunner

from nixfly.errors import NixflyError
from nixfly.hosts import profile
from nixfly.hosts.host import Host

PROFILE = PurePosixPath("/state/app/profile")
LISTING = """\
   1   2026-01-01 10:00:00
   2   2026-01-02 10:00:00
   3   2026-01-03 10:00:00   (current)
"""


def host(runner: ScriptedRunner) -> Host:
    return Host("local", runner, PurePosixPath("/state"))


def test_parse_generations():
    assert profile.parse_generations(LISTING + "garbage\n") == [
        profile.Generation(1, "2026-01-01 10:00:00", False),
        profile.Generation(2, "2026-01-02 10:00:00", False),
        profile.Generation(3, "2026-01-03 10:00:00", True),
    ]


def test_generations_current_and_links():
    runner = ScriptedRunner().on("--list-generations", stdout=LISTING)
    assert [g.number for g in profile.generations(host(runner), PROFILE)] == [1, 2, 3]
    assert profile.current(host(runner), PROFILE) == profile.Generation(3, "2026-01-03 10:00:00", True)
    assert profile.link(PROFILE, 2) == PurePosixPath("/state/app/profile-2-link")
    assert runner.calls[0].argv == ("nix-env", "--profile", str(PROFILE), "--list-generations")


def test_no_profile_yet_means_no_generations():
    runner = ScriptedRunner().on("--list-generations", code=1, stderr="error: no such profile")
    assert profile.generations(host(runner), PROFILE) == [] and profile.current(host(runner), PROFILE) is None


def test_set_path_makes_the_new_generation_current():
    runner = ScriptedRunner().on("--set").on("--list-generations", stdout=LISTING)
    assert profile.set_path(host(runner), PROFILE, "/nix/store/x").number == 3  # type: ignore[union-attr]
    assert runner.calls[0].line == f"--profile {PROFILE} --set /nix/store/x"


def test_prune_keeps_the_newest_and_the_current():
    listing = "   1 2026-01-01 1\n   2 2026-01-01 2 (current)\n   3 2026-01-01 3\n   4 2026-01-01 4\n"
    runner = ScriptedRunner().on("--list-generations", stdout=listing).on("--delete-generations")
    assert profile.prune(host(runner), PROFILE, 1) == [1, 3]
    assert runner.calls[-1].line.endswith("--delete-generations 1 3")
    quiet = ScriptedRunner().on("--list-generations", stdout=listing)
    assert profile.prune(host(quiet), PROFILE, 4) == [] and len(quiet.calls) == 1


def test_switch_refuses_a_generation_that_is_not_there():
    runner = ScriptedRunner().on("--list-generations", stdout=LISTING).on("--switch-generation")
    profile.switch(host(runner), PROFILE, 2)
    assert runner.calls[-1].line.endswith("--switch-generation 2")
    with pytest.raises(NixflyError, match="has no generation 9") as info:
        profile.switch(host(runner), PROFILE, 9)
    assert info.value.hint.startswith("generations: 1, 2, 3")  # type: ignore[union-attr]


def test_store_path_of_a_generation():
    runner = ScriptedRunner().on(program="readlink", stdout="/nix/store/x\n")
    assert profile.store_path(host(runner), PROFILE, 2) == "/nix/store/x"
    assert runner.calls[0].argv == ("readlink", "/state/app/profile-2-link")
    assert profile.store_path(host(ScriptedRunner().on(program="readlink", code=1)), PROFILE, 2) == ""
