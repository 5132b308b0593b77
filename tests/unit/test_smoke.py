"""nixfly.smoke: remembering which closures passed, and the pytest command for a mode's smoke tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers.fakes import ScriptedRunner

from nixfly import smoke


def test_a_pass_is_remembered_per_store_path(tmp_path):
    assert not smoke.passed_before(tmp_path, "/nix/store/a")
    smoke.remember(tmp_path, "/nix/store/a")
    assert smoke.passed_before(tmp_path, "/nix/store/a") and not smoke.passed_before(tmp_path, "/nix/store/b")


def test_only_the_last_ten_are_kept_newest_last(tmp_path):
    for i in range(12):
        smoke.remember(tmp_path, f"/nix/store/{i}")
    smoke.remember(tmp_path, "/nix/store/5")
    kept = json.loads(smoke.record_file(tmp_path).read_text())
    assert kept == [f"/nix/store/{i}" for i in (2, 3, 4, 6, 7, 8, 9, 10, 11, 5)]


def test_a_damaged_record_means_not_passed(tmp_path):
    smoke.record_file(tmp_path).write_text("{not json")
    assert not smoke.passed_before(tmp_path, "/nix/store/a")
    smoke.record_file(tmp_path).write_text('{"a": 1}')  # not a list: `in` a dict of other keys
    assert not smoke.passed_before(tmp_path, "/nix/store/a")
    smoke.remember(tmp_path, "/nix/store/a")
    assert smoke.passed_before(tmp_path, "/nix/store/a")


def test_pytest_args_select_the_modes_marker():
    base = ["-m", "pytest", "tests/smoke", "-q", "-p", "no:cacheprovider"]
    assert smoke.pytest_args(Path("tests/smoke"), "integrated") == [*base, "-m", "integrated"]
    assert smoke.pytest_args(Path("tests/smoke"), "") == base


def test_run_points_the_suite_at_the_result(tmp_path):
    runner = ScriptedRunner().on("pytest", program=Path(sys.executable).name)
    smoke.run(runner, tmp_path, tmp_path / "result", "ai_server")
    [call] = runner.calls
    assert call.argv[0] == sys.executable and call.argv[-2:] == ("-m", "ai_server")
    assert call.env == {"NIXFLY_RESULT": str(tmp_path / "result")} and call.cwd == tmp_path
