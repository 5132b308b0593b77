"""nixfly.smoke: remembering which closures passed, and the pytest command for a mode's smoke tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers.fakes import ScriptedRunner

from nixfly import smoke
from nixfly.pipeline import Outcome, Pipeline
from nixfly.runner import Completed, Runner


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


FAILING_SUITE = """
import pytest

def test_passes():
    pass

def test_answers_wrong():
    print("service said: ECHO: hello")
    assert "ECHO: hello" == "echo: hello"

@pytest.fixture
def broken():
    raise RuntimeError("port 4000 is taken")

def test_needs_a_fixture(broken):
    pass

@pytest.mark.parametrize("port", [1, 2])
def test_each_port(port):
    assert port == 1

class TestGroup:
    def test_in_a_class(self):
        raise ValueError("not enough values to unpack")
"""


def test_a_failure_names_each_failing_test_with_its_output(tmp_path):
    """pytest for real on a suite that fails in every way: the error names every failing test, and its table
    (the smoke step's rows in --json) holds each one's reason and the tail of its report."""
    (tmp_path / "tests" / "smoke").mkdir(parents=True)
    (tmp_path / "tests" / "smoke" / "test_suite.py").write_text(FAILING_SUITE)
    with pytest.raises(smoke.SmokeFailed) as caught:
        smoke.run(Runner(), tmp_path, tmp_path / "result", "")
    error = caught.value
    ids = {
        "tests/smoke/test_suite.py::test_answers_wrong",
        "tests/smoke/test_suite.py::test_needs_a_fixture",
        "tests/smoke/test_suite.py::test_each_port[2]",
        "tests/smoke/test_suite.py::TestGroup::test_in_a_class",
    }
    assert {f.test for f in error.failures} == ids
    assert error.message.startswith("smoke tests failed (exit 1): 3 failed, 2 passed, 1 error in ")
    assert all(test in error.message for test in ids)
    by_test = {f.test: f for f in error.failures}
    wrong = by_test["tests/smoke/test_suite.py::test_answers_wrong"]
    assert wrong.reason.startswith("AssertionError: assert 'ECHO: hello' == 'echo: hello'")
    assert "service said: ECHO: hello" in wrong.tail  # its captured stdout
    assert "port 4000 is taken" in by_test["tests/smoke/test_suite.py::test_needs_a_fixture"].tail
    assert "assert 2 == 1" in by_test["tests/smoke/test_suite.py::test_each_port[2]"].tail
    assert "not enough values" in by_test["tests/smoke/test_suite.py::TestGroup::test_in_a_class"].tail
    assert all(len(f.tail.splitlines()) <= smoke.TAIL_LINES for f in error.failures)
    rows = error.table.as_json()["rows"]
    assert [row["test"] for row in rows] == [f.test for f in error.failures]
    assert set(rows[0]) == {"test", "reason", "output"}


def test_a_failure_without_a_report_says_what_pytest_said():
    completed = Completed(("python3", "-m", "pytest"), 1, "", "/usr/bin/python3: No module named pytest\n")
    said = r"smoke tests failed on h1 \(exit 1\): .*No module named pytest"
    with pytest.raises(smoke.SmokeFailed, match=said):
        smoke.check(completed, " on h1", "install pytest there")
    smoke.check(Completed((), 0, "", ""), "", "never raised: it passed")


def test_a_failed_smoke_step_keeps_its_table_in_the_record():
    failure = smoke.Failure("tests/smoke/test_closure.py::test_layout", "AssertionError", "E   assert x")
    pipeline = Pipeline("deploy")

    def fail() -> Outcome:
        raise smoke.SmokeFailed("smoke tests failed (exit 1): 1 failed", "fix it", [failure])

    with pytest.raises(smoke.SmokeFailed):
        pipeline.run_extra("smoke", fail)
    [record] = pipeline.records
    assert record.as_json()["table"]["rows"] == [
        {"test": failure.test, "reason": "AssertionError", "output": "E   assert x"}
    ]
