"""Running named steps in order, timing each, and ending with a summary whatever happened.

A step is a function returning an ``Outcome``; it raises ``NixflyError`` to fail the pipeline. The summary
(table on stderr, or JSON on stdout with ``--json``) says what each step did or skipped, how long it took,
where a failure or Ctrl-C stopped the run, and how to resume. A step that crashes with anything else is
nixfly's own bug: it is recorded as failed (never missing, never "ok"), its traceback goes to a file, and the
run ends with ``errors.BUG_EXIT``.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from nixfly import console
from nixfly.errors import BUG_EXIT, Interrupted, NixflyError, interrupt_name
from nixfly.runner import REDACT, stop_all

StepStatus = Literal["done", "skipped", "planned", "failed", "interrupted", "not run"]
OK_STATUSES: tuple[StepStatus, ...] = ("done", "skipped", "planned")


@dataclass(frozen=True)
class Table:
    """What a step found, where one line cannot say it (e.g. the machines of each region): printed after
    the summary, and in ``--json`` a list of objects keyed by column."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    # What ``--json`` gives whole when the rows are a rendering of it (a closure diff).
    data: Mapping[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        rows = [dict(zip(self.columns, row, strict=True)) for row in self.rows]
        return {"title": self.title, "rows": rows, **({"data": dict(self.data)} if self.data else {})}

    def show(self) -> None:
        """On stderr; a cell holding several names (a tuple) lists them, an empty one reads ``-``."""
        console.table(
            self.title,
            self.columns,
            [
                tuple(", ".join(map(str, c)) or "-" if isinstance(c, tuple) else c for c in row)
                for row in self.rows
            ],
        )


@dataclass(frozen=True)
class Outcome:
    status: StepStatus
    detail: str
    table: Table | None = None


def done(detail: str, table: Table | None = None) -> Outcome:
    return Outcome("done", detail, table)


def skipped(detail: str, table: Table | None = None) -> Outcome:
    return Outcome("skipped", detail, table)


def planned(detail: str, table: Table | None = None) -> Outcome:
    """What a dry-run would have done."""
    return Outcome("planned", detail, table)


@dataclass
class StepRecord:
    step: str
    status: StepStatus
    detail: str
    seconds: float
    table: Table | None = None

    def as_json(self) -> dict[str, Any]:
        data = {"step": self.step, "status": self.status, "detail": self.detail, "seconds": self.seconds}
        return {**data, "table": self.table.as_json()} if self.table else data


Step = tuple[str, Callable[[], Outcome]]
# Called after a step failed (not after Ctrl-C): may run recovery steps and add notes to the error.
Recovery = Callable[["Pipeline", str, NixflyError], None]


def bug_report(where: str, exc: BaseException) -> NixflyError:
    """An unexpected exception as one line: where nixfly broke and where its traceback went."""
    text = REDACT("".join(traceback.format_exception(exc)))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"nixfly-crash-{stamp}-{os.getpid()}.txt"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        saved = f"the traceback is in {path}"
    except OSError:
        saved = "the traceback could not be saved"
    return NixflyError(
        f"nixfly hit a bug in {where} ({type(exc).__name__}); {saved}",
        "please report it with that file; nothing after this step ran",
        exit_code=BUG_EXIT,
    )


class Pipeline:
    def __init__(self, title: str, *, json_summary: bool = False, resume_hint: str = "") -> None:
        self.title = title
        self.json_summary = json_summary
        self.resume_hint = resume_hint
        self.records: list[StepRecord] = []

    def run(self, steps: list[Step], *, on_failure: Recovery | None = None) -> None:
        """Run ``steps``; on failure or Ctrl-C the summary still prints and the error propagates.

        ``on_failure(pipeline, step, error)`` may run recovery steps (``run_extra``) and add notes to the
        error. A Ctrl-C never triggers recovery: it means stop, leave what is live alone, and say where.
        """
        names = [name for name, _ in steps]
        try:
            for index, (name, action) in enumerate(steps):
                try:
                    self.run_extra(name, action)
                except Interrupted:
                    self._not_run(names[index + 1 :])
                    raise
                except NixflyError as exc:
                    if on_failure is not None and exc.exit_code != BUG_EXIT:
                        on_failure(self, name, exc)
                    self._not_run(names[index + 1 :])
                    raise
        finally:
            self.summary()

    def run_extra(self, name: str, action: Callable[[], Outcome]) -> Outcome:
        """Run and record one step; failures are recorded and re-raised (bugs as a ``NixflyError``)."""
        started = time.monotonic()
        try:
            with console.progress(name):
                outcome = action()
        except Interrupted as exc:
            self._record(name, "interrupted", exc.by, started)
            raise
        except NixflyError as exc:
            # An error may carry what one line cannot say (the smoke step's failing tests and their output).
            table = getattr(exc, "table", None)
            self._record(name, "failed", exc.message, started, table if isinstance(table, Table) else None)
            raise
        except KeyboardInterrupt as exc:
            # A Ctrl-C, or SIGTERM/SIGHUP raised as one (errors.Stopped). Children started from other
            # threads (concurrent reads) are not this thread's to stop.
            stop_all()
            self._record(name, "interrupted", interrupt_name(exc), started)
            raise Interrupted(name, self.resume_hint or "run the same command again", cause=exc) from None
        except Exception as exc:
            stop_all()
            report = bug_report(f"step {name}", exc)
            self._record(name, "failed", report.message, started)
            raise report from exc
        self._record(name, outcome.status, outcome.detail, started, outcome.table)
        return outcome

    def _record(
        self, name: str, status: StepStatus, detail: str, started: float, table: Table | None = None
    ) -> None:
        self.records.append(StepRecord(name, status, detail, round(time.monotonic() - started, 2), table))

    def _not_run(self, names: list[str]) -> None:
        self.records.extend(StepRecord(name, "not run", "", 0.0) for name in names)

    @property
    def ok(self) -> bool:
        return all(r.status in OK_STATUSES for r in self.records)

    def markdown(self) -> str:
        lines = [
            f"### {self.title}: {'ok' if self.ok else 'FAILED'}",
            "",
            "| step | status | detail | time |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r.step} | {r.status} | {r.detail.replace('|', '/')} | {r.seconds:.1f}s |"
            for r in self.records
        ]
        return "\n".join(lines) + "\n\n"

    def summary(self) -> None:
        total = sum(r.seconds for r in self.records)
        console.table(
            f"{self.title} — {'ok' if self.ok else 'FAILED'} in {total:.1f}s",
            ("step", "status", "detail", "time"),
            [(r.step, r.status, r.detail, f"{r.seconds:.1f}s") for r in self.records],
        )
        for record in self.records:
            if record.table is not None:
                record.table.show()
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            # GitHub Actions renders this Markdown on the run's page. A copy for people: failing to write it
            # (a full disk) must not turn the run's own outcome into a crash.
            try:
                with open(step_summary, "a", encoding="utf-8") as handle:
                    handle.write(self.markdown())
            except OSError as exc:
                console.warn(f"the summary was not added to GITHUB_STEP_SUMMARY: {exc.strerror or exc}")
        if self.json_summary:
            console.print_json(
                {
                    "title": self.title,
                    "ok": self.ok,
                    "seconds": round(total, 2),
                    "steps": [r.as_json() for r in self.records],
                }
            )
