"""nixfly.pipeline: steps run in order, timed, and summed up whatever happened (table, JSON, job summary)."""

from __future__ import annotations

import json
import stat

import pytest

from nixfly.errors import BUG_EXIT, Interrupted, NixflyError
from nixfly.pipeline import OK_STATUSES, Pipeline, bug_report, done, planned, skipped
from nixfly.runner import REDACT


def fail(message: str = "broke", exit_code: int = 1):
    def step():
        raise NixflyError(message, exit_code=exit_code)

    return step


def test_a_failure_is_handed_to_recovery_which_may_run_extra_steps(capsys):
    seen = []

    def recover(pipeline, step, error):
        seen.append((step, error.message))
        pipeline.run_extra("rollback", lambda: done("back"))

    p = Pipeline("t", json_summary=True)
    with pytest.raises(NixflyError):
        p.run([("a", lambda: done("")), ("b", fail()), ("c", lambda: done(""))], on_failure=recover)
    assert seen == [("b", "broke")]
    assert [(r.step, r.status) for r in p.records] == [
        ("a", "done"),
        ("b", "failed"),
        ("rollback", "done"),
        ("c", "not run"),
    ]
    assert json.loads(capsys.readouterr().out)["ok"] is False


def test_a_bug_never_triggers_recovery_and_is_exit_70(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    called = []
    p = Pipeline("t")
    with pytest.raises(NixflyError) as info:
        p.run([("a", lambda: 1 / 0)], on_failure=lambda *args: called.append(args))
    assert called == [] and info.value.exit_code == BUG_EXIT
    assert p.records[0].status == "failed"
    assert p.records[0].detail.startswith("nixfly hit a bug in step a (ZeroDivisionError)")
    with pytest.raises(NixflyError):
        p.run([("b", fail("bug", exit_code=BUG_EXIT))], on_failure=lambda *args: called.append(args))
    assert called == []


def test_interruption_is_not_a_failure_to_recover_from():
    called = []

    def interrupted():
        raise Interrupted("a")

    p = Pipeline("t")
    with pytest.raises(Interrupted):
        p.run([("a", interrupted), ("b", lambda: done(""))], on_failure=lambda *args: called.append(args))
    assert called == []
    assert [r.status for r in p.records] == ["interrupted", "not run"]


def test_done_skipped_and_planned_are_ok():
    p = Pipeline("t")
    p.run([("a", lambda: done("")), ("b", lambda: skipped("")), ("c", lambda: planned(""))])
    assert p.ok and OK_STATUSES == ("done", "skipped", "planned")
    p.records[1].status = "not run"
    assert not p.ok


def test_bug_report_masks_secrets_and_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    REDACT.add("canary-bug-report-77")
    try:
        raise RuntimeError("token canary-bug-report-77 leaked")
    except RuntimeError as exc:
        error = bug_report("`inv x`", exc)
    [report] = tmp_path.glob("nixfly-crash-*.txt")
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    assert "canary-bug-report-77" not in report.read_text() and "token ***" in report.read_text()
    assert str(report) in error.message and error.exit_code == BUG_EXIT


def test_bug_report_when_the_file_cannot_be_written(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    error = bug_report("`inv x`", ValueError("v"))
    assert error.message == "nixfly hit a bug in `inv x` (ValueError); the traceback could not be saved"


def test_markdown_escapes_table_pipes():
    p = Pipeline("deploy")
    p.run([("a", lambda: done("x | y"))])
    assert "| a | done | x / y |" in p.markdown()
    assert p.markdown().startswith("### deploy: ok\n")


def test_pipeline_records_failure_and_not_run_steps(capsys):
    p = Pipeline("t", json_summary=True)

    def fail():
        raise NixflyError("broke")

    with pytest.raises(NixflyError):
        p.run([("a", lambda: done("ok")), ("b", fail), ("c", lambda: skipped("x"))])
    assert [(r.step, r.status) for r in p.records] == [("a", "done"), ("b", "failed"), ("c", "not run")]
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is False and summary["steps"][1]["detail"] == "broke"


def test_pipeline_turns_ctrl_c_into_interrupted():
    p = Pipeline("t", resume_hint="run it again")

    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as info:
        p.run([("a", interrupt), ("b", lambda: done(""))])
    assert info.value.exit_code == 130 and "during a" in str(info.value)
    assert [r.status for r in p.records] == ["interrupted", "not run"]


def test_pipeline_writes_the_github_job_summary(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    Pipeline("deploy integrated → oneshot").run(
        [("build", lambda: done("a | b")), ("smoke", lambda: skipped("x"))]
    )
    text = summary.read_text()
    assert "### deploy integrated → oneshot: ok" in text
    assert "| build | done | a / b |" in text and "| smoke | skipped | x |" in text


def test_a_job_summary_that_cannot_be_written_is_a_warning(tmp_path, monkeypatch, capsys):
    """A full disk (here: a directory where the file must be) never turns a run's outcome into a crash."""
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))
    p = Pipeline("deploy integrated → oneshot")
    p.run([("build", lambda: done("built"))])
    assert p.ok
    assert "warning: the summary was not added to GITHUB_STEP_SUMMARY" in capsys.readouterr().err
