"""Running named steps in order, timing each, and ending with a summary whatever happened.

A step is a function returning an ``Outcome``; it raises ``NixflyError`` to fail the pipeline. The summary
(table on stderr, or JSON on stdout with ``--json``) says what each step did or skipped, how long it took,
where a failure or Ctrl-C stopped the run, and how to resume.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from nixfly import console
from nixfly.errors import Interrupted, NixflyError


@dataclass(frozen=True)
class Outcome:
    status: str  # done | skipped | planned (dry-run) | failed | interrupted | not run
    detail: str


def done(detail: str) -> Outcome:
    return Outcome("done", detail)


def skipped(detail: str) -> Outcome:
    return Outcome("skipped", detail)


def planned(detail: str) -> Outcome:
    """What a dry-run would have done."""
    return Outcome("planned", detail)


@dataclass
class StepRecord:
    step: str
    status: str
    detail: str
    seconds: float


Step = tuple[str, Callable[[], Outcome]]


class Pipeline:
    def __init__(self, title: str, *, json_summary: bool = False, resume_hint: str = "") -> None:
        self.title = title
        self.json_summary = json_summary
        self.resume_hint = resume_hint
        self.records: list[StepRecord] = []

    def run(self, steps: list[Step], *, on_failure: Callable[[str, NixflyError], None] | None = None) -> None:
        """Run ``steps``; on failure or Ctrl-C the summary still prints and the error propagates.

        ``on_failure(step, error)`` may run recovery steps (``run_extra``) and amend the error's text.
        """
        names = [name for name, _ in steps]
        try:
            for index, (name, action) in enumerate(steps):
                try:
                    self.run_extra(name, action)
                except NixflyError as exc:
                    if on_failure is not None:
                        on_failure(name, exc)
                    self._not_run(names[index + 1 :])
                    raise
                except Interrupted:
                    self._not_run(names[index + 1 :])
                    raise
        finally:
            self.summary()

    def run_extra(self, name: str, action: Callable[[], Outcome]) -> Outcome:
        """Run and record one step; failures are recorded and re-raised."""
        started = time.monotonic()
        try:
            with console.progress(name):
                outcome = action()
        except NixflyError as exc:
            self._record(name, "failed", exc.message, started)
            raise
        except KeyboardInterrupt:
            self._record(name, "interrupted", "Ctrl-C", started)
            raise Interrupted(name, self.resume_hint or "run the same command again") from None
        self._record(name, outcome.status, outcome.detail, started)
        return outcome

    def _record(self, name: str, status: str, detail: str, started: float) -> None:
        self.records.append(StepRecord(name, status, detail, round(time.monotonic() - started, 2)))

    def _not_run(self, names: list[str]) -> None:
        self.records.extend(StepRecord(name, "not run", "", 0.0) for name in names)

    @property
    def ok(self) -> bool:
        return all(r.status in ("done", "skipped", "planned") for r in self.records)

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
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            # GitHub Actions renders this Markdown on the run's page.
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(self.markdown())
        if self.json_summary:
            json.dump(
                {
                    "title": self.title,
                    "ok": self.ok,
                    "seconds": round(total, 2),
                    "steps": [asdict(r) for r in self.records],
                },
                sys.stdout,
                indent=2,
            )
            sys.stdout.write("\n")
            sys.stdout.flush()
