"""A group of SSH hosts as one deploy target: the closure goes to all of them at once, then the release rolls
through them in batches (``--batch N``, default 1), each batch health-gated before the next starts.

    host locks (every host, or none) → copy (every host at once) →
    activate batch 1 → verify batch 1 → activate batch 2 → verify batch 2 → …
        └─ a failure: the hosts that failed and every host already switched go back to their previous
           generation, at once, each verified again; hosts not reached are left as they were

Each host is a ``HostTarget`` (its own SSH connection, lock and activation); this module only orders them.
Work on several hosts runs concurrently, a thread per host (``across``): the locks, the copies, a
batch's activations and health checks, the rollback, the status reads. A batch switches its hosts at once
because that is what a batch means to the person choosing its size, and because one host after another
costs each host's SSH round trips and nix-env calls in turn: measured (bench/fleet.py), one-by-one
activation made ``--batch 3`` no faster than ``--batch 1``. A batch's steps are named by its hosts
(``activate a, b``): with ``--batch 1`` every host has its own ``activate``/``verify`` step in the summary and
in ``--json``; a batch step's detail gives each host's outcome, and a rollout ends with a per-host table
(host, before, after, result): printed after the summary, and in ``--json``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Unpack

from nixfly import console, git, lock
from nixfly.buildhost import BuildHost
from nixfly.config import Settings
from nixfly.console import print_json
from nixfly.errors import NixflyError
from nixfly.hosts import hostdiff, receipts, releases
from nixfly.hosts.across import each, failures, one_error
from nixfly.hosts.target import ALREADY_HELD, HostFlags, HostTarget, lock_table, released, which
from nixfly.pipeline import Outcome, Pipeline, Step, StepStatus, Table, done, planned, skipped
from nixfly.runner import Runner
from nixfly.target import Candidate, Options, TargetSpec


def batches(members: Sequence[HostTarget], size: int) -> list[list[HostTarget]]:
    """The rollout order: ``size`` hosts at a time, in the order the target lists them."""
    size = max(1, size)
    return [list(members[i : i + size]) for i in range(0, len(members), size)]


def _together(outcomes: Sequence[Outcome]) -> Outcome:
    """A batch's outcome: done if any host did something, planned if any would, else skipped; every detail."""
    statuses = {o.status for o in outcomes}
    status: StepStatus = next((s for s in ("done", "planned") if s in statuses), "skipped")
    return Outcome(status, "; ".join(o.detail for o in outcomes))


def _generation(number: int | None) -> str:
    return f"generation {number}" if number else "-"


@dataclass
class HostReport:
    """One row of the per-host table a rollout ends with."""

    before: str = "-"
    after: str = "-"
    result: str = "not reached: untouched"


class GroupTarget:
    """Several hosts behind one ``Target``: ``ssh://a,ssh://b`` or a group from ``nixfly.groups``."""

    def __init__(
        self,
        settings: Settings,
        here: Runner,
        spec: TargetSpec,
        options: Options,
        **flags: Unpack[HostFlags],
    ) -> None:
        """``flags``: what every member is opened with (``HostTarget``'s port and overrides)."""
        self.s = settings
        self.spec = spec
        self.here = here
        self.options = options
        self.members = [
            HostTarget(settings, here, TargetSpec("ssh", host), options, **flags) for host in spec.hosts
        ]
        # Filled by a deploy: the hosts whose activation began (in order), those that failed, and the table.
        self.reached: list[HostTarget] = []
        self.failed: list[HostTarget] = []
        self.reports: dict[str, HostReport] = {}
        # Filled by ``rollback``: the per-host table (before, after, result), also when it failed.
        self.rollback_table: Table | None = None

    # --- Target: the deploy ---------------------------------------------------------------------------------
    def preflight(self, build: BuildHost, *, skip_build: bool) -> list[str]:
        results = each(self.members, lambda m: m.preflight(build, skip_build=skip_build))
        failed = failures(self.members, results)
        if failed:
            raise one_error(failed, len(self.members), "cannot deploy")
        return list(dict.fromkeys(c for checked in results if isinstance(checked, list) for c in checked))

    def observe(self) -> None:
        """Each host's state is read once its lock is held (``claim_all``); the release starts now."""
        for member in self.members:
            member.observe()

    def deploy_steps(self, candidate: Candidate, build: BuildHost) -> list[Step]:
        command = self.deploy_command()
        steps: list[Step] = [
            ("host locks", lambda: self.claim_all(command)),
            ("diff", lambda: self.plan_diff(candidate)),
            ("copy", lambda: self.copy_all(candidate)),
        ]
        for batch in batches(self.members, self.options.batch):
            hosts = ", ".join(m.name for m in batch)
            steps += [
                (f"activate {hosts}", partial(self.activate, batch, candidate)),
                (f"verify {hosts}", partial(self.verify, batch)),
            ]
        return [*steps, ("receipts", lambda: self.write_receipts(candidate))]

    def lock_all(self, command: str) -> None:
        """Every host's lock, or none (released by ``close``): a host that is locked or cannot be reached
        raises, naming it, before anything changes."""
        revision = git.revision(self.here, self.s.root)
        results = each(self.members, lambda m: m.claim(command, revision))
        failed = failures(self.members, results)
        if failed:
            each(self.members, lambda m: m.lock.release())
            error = one_error(failed, len(self.members), "cannot lock")
            error.add_note("no host was changed")
            raise error

    def claim_all(self, command: str) -> Outcome:
        """The deploy's step: every host's lock, then what each host runs now (the table's "before")."""
        self.lock_all(command)
        lives = each(self.members, lambda m: m.activation.records().live)
        for member, live in zip(self.members, lives, strict=True):
            number = None if isinstance(live, NixflyError) or live is None else live.generation
            self.reports[member.name] = HostReport(before=_generation(number), after=_generation(number))
        if self.s.dry_run:
            return planned(f"would lock {self.s.app} on {len(self.members)} hosts")
        return done(f"{self.s.app} locked on {len(self.members)} hosts by pid {os.getpid()}")

    def plan_diff(self, candidate: Candidate) -> Outcome:
        """What this deploy changes against each host's live generation, one diff per live closure
        (``hostdiff``: one read per host, on the host, all hosts at once)."""
        new = hostdiff.candidate_manifest(self.s, self.here, candidate)
        lives = each(self.members, lambda m: m.read_live()) if not isinstance(new, str) else []
        named = [(m.name, live) for m, live in zip(self.members, lives, strict=False)]
        return hostdiff.outcome(new, named, dry=self.s.dry_run)

    def write_receipts(self, candidate: Candidate) -> Outcome:
        """Each host's receipt beside its verified generation (``HostTarget.write_receipt``), all at once."""
        results = each(self.members, lambda m: m.write_receipt(candidate))
        failed = failures(self.members, results)
        if failed:
            raise one_error(failed, len(self.members), "receipt not written")
        kept = zip(self.members, results, strict=True)
        return receipts.group_outcome([(m.name, m.receipt_at, r) for m, r in kept if isinstance(r, Outcome)])

    def copy_all(self, candidate: Candidate) -> Outcome:
        """``nix copy`` to every host at once (one per host, through the runner)."""
        results = each(self.members, lambda m: m.copy(candidate))
        failed = failures(self.members, results)
        for member, exc in failed:
            self.reports[member.name].result = f"copy FAILED: {exc.message}"
        if failed:
            error = one_error(failed, len(self.members), "nix copy failed")
            error.add_note("no host was switched")
            raise error
        outcomes = [r for r in results if isinstance(r, Outcome)]
        if self.s.dry_run:
            return planned(f"would copy the closure to {len(self.members)} hosts at once")
        copied = [m.name for m, o in zip(self.members, outcomes, strict=True) if o.status == "done"]
        held = sum(1 for o in outcomes if o.status == "skipped" and ALREADY_HELD in o.detail)
        had = f"{held} of {len(self.members)} hosts already had it" if held else ""
        if not copied:
            return skipped(had or "built on the only host: nothing to copy")
        return done(
            f"copied {candidate.store_path} to {len(copied)} hosts at once" + (f"; {had}" if had else "")
        )

    def activate(self, batch: list[HostTarget], candidate: Candidate) -> Outcome:
        """Switch the batch's hosts at once: a new generation each, its process restarted (not verified)."""
        self.reached += batch
        results = each(batch, lambda m: m.activate(candidate))
        for member, outcome in zip(batch, results, strict=True):
            report = self.reports[member.name]
            if isinstance(outcome, Outcome) and outcome.status == "skipped":
                report.result = "already live"
            elif isinstance(outcome, Outcome) and outcome.status == "done":
                report.after, report.result = _generation(self._started(member)), "started, not verified"
        return self._settle(batch, results)

    def verify(self, batch: list[HostTarget]) -> Outcome:
        """The batch's health gate: every host's checks, polled at once, answered by its new release."""
        results = each(batch, lambda m: m.activation.verify())
        for member, outcome in zip(batch, results, strict=True):
            if isinstance(outcome, Outcome) and outcome.status == "done":
                self.reports[member.name].result = "deployed, healthy"
        settled = self._settle(batch, results)
        last = batch[-1] is self.members[-1]
        return replace(settled, table=self._table()) if last and not self.s.dry_run else settled

    def _table(self) -> Table:
        """The per-host table a rollout ends with (printed after the summary; in ``--json`` too)."""
        return Table(
            f"{self.s.app} on {self.spec}: per host",
            ("host", "before", "after", "result"),
            tuple((name, r.before, r.after, r.result) for name, r in self.reports.items()),
        )

    def _settle(self, batch: list[HostTarget], results: list[Outcome | NixflyError]) -> Outcome:
        """The batch's outcome; when hosts failed, they are remembered and one error names each of them."""
        failed = failures(batch, results)
        for member, exc in failed:
            self.failed.append(member)
            self.reports[member.name].result = f"FAILED: {exc.message}"
        if failed:
            raise one_error(failed, len(batch), "")
        return _together([r for r in results if isinstance(r, Outcome)])

    @staticmethod
    def _started(member: HostTarget) -> int | None:
        started = member.activation.candidate
        return started.generation if started else None

    def recover(self, pipeline: Pipeline, step: str, error: NixflyError) -> None:
        """The hosts that failed and every host switched before them go back at once, each verified again."""
        failed = [m for m in self.failed if m.activation.candidate is not None]
        switched = [m for m in self.reached[::-1] if m.activation.candidate is not None and m not in failed]
        back = failed + switched
        if back:
            hosts = ", ".join(m.name for m in back)
            pipeline.run_extra(f"rollback {hosts}", lambda: self._restore(back, error))
        if self.failed and error.hint is None:
            error.hint = f"`inv logs --target {','.join(str(m.spec) for m in self.failed)}` shows its output"
        untouched = [m.name for m in self.members if m not in self.reached]
        if untouched and self.reached:
            error.add_note(f"not reached, left as they were: {', '.join(untouched)}")

    def _restore(self, back: list[HostTarget], error: NixflyError) -> Outcome:
        """Put ``back`` on their previous generations (in parallel); notes on ``error`` say what happened."""
        started = [f"{m.name} ({_generation(self._started(m))})" for m in back]
        # Each host's own notes would repeat the story per host: the group's are written here, once.
        outcomes = each(back, lambda m: m.activation.restore(NixflyError(""), auto=self.options.rollback))
        restored, stopped, broken = [], [], []
        for member, outcome in zip(back, outcomes, strict=True):
            report = self.reports[member.name]
            was_failed = member in self.failed
            if isinstance(outcome, NixflyError) or outcome.status == "failed":
                detail = outcome.message if isinstance(outcome, NixflyError) else outcome.detail
                report.after = "?"
                report.result = (f"{report.result}; " if was_failed else "") + f"rollback FAILED: {detail}"
                broken.append(f"{member.name}: {detail}")
            elif outcome.detail == "--no-rollback":
                report.result += "; left running (--no-rollback)"
            elif outcome.status == "skipped":
                report.after = "stopped"
                report.result = report.result if was_failed else "stopped with the group (its first deploy)"
                stopped.append(member.name)
            else:
                report.after = report.before
                report.result = report.result if was_failed else "rolled back with the group"
                restored.append(f"{member.name} ({report.before})")
        if not self.options.rollback:
            error.add_note(f"automatic rollback is off: still running the new release: {', '.join(started)}")
            return skipped("--no-rollback", self._table())
        if restored:
            error.add_note(f"rolled back to the previous generation, healthy again: {', '.join(restored)}")
        if stopped:
            error.add_note(f"stopped, nothing to roll back to (first deploy): {', '.join(stopped)}")
        if broken:
            error.add_note(f"rolling back FAILED too on {'; '.join(broken)}")
            return Outcome("failed", "; ".join(broken), self._table())
        return done("; ".join(restored + [f"{name} stopped" for name in stopped]), self._table())

    def interrupted(self, step: str) -> str:
        switched = [m for m in self.reached if m.activation.candidate is not None]
        if self.s.dry_run or not switched:
            return ""
        said = []
        for member in switched:
            checked = "verified" if member.activation.verified else "unverified"
            said.append(f"{member.name} runs generation {self._started(member)} ({checked})")
            self.reports[member.name].result = f"interrupted: {checked}, not rolled back"
        hosts = ",".join(str(m.spec) for m in switched)
        return f"{'; '.join(said)}; not rolled back: `inv rollback --target {hosts}` puts them back"

    def finish(self) -> None:
        live = {m.name: m.activation.live_url() for m in self.members}
        ports = sorted({url.rpartition(":")[2] for url in live.values() if url})
        if ports:
            console.ok(
                f"{self.s.app} answers on {len(self.members)} hosts (port {', '.join(ports)} on each); "
                f"`inv status --target {self.spec}` shows them"
            )

    # --- Target: what the tasks ask afterwards --------------------------------------------------------------
    def releases(self, *, as_json: bool) -> None:
        releases.show(self.s, self.members, as_json=as_json)

    def diff(self, old: str, new: str, *, as_json: bool) -> None:
        releases.between(self.s, self.here, self.members, old, new, as_json=as_json)

    def status(self, *, as_json: bool) -> None:
        """One row per host: its process, health now, live generation and store path; unreadable hosts too."""
        documents = each(self.members, lambda m: m.document())
        rows, shown = [], []
        for member, doc in zip(self.members, documents, strict=True):
            if isinstance(doc, NixflyError):
                rows.append((member.name, "UNREADABLE", doc.message, "-", "-"))
                shown.append({"host": member.name, "error": doc.message})
                continue
            health, live = doc["health"], doc["live"] or {}
            rows.append(
                (
                    member.name,
                    f"running (pid {doc['pid']})" if doc["pid"] else "not running",
                    ("healthy" if health["healthy"] else "UNHEALTHY") if health else "-",
                    _generation(live.get("generation")),
                    live.get("store_path", "-"),
                )
            )
            shown.append({"host": member.name, **doc})
        console.table(
            f"{self.s.app} on {self.spec}",
            ("host", "process", "health", "live", "store path"),
            rows,
        )
        if as_json:
            print_json(shown)
        failed = failures(self.members, documents)
        if failed:
            raise one_error(failed, len(self.members), "could not read the state")

    def logs(self, *, lines: int, timeout: float) -> str:
        """Each host's log tail under a ``==> host <==`` header, as ``tail`` shows several files."""
        texts = each(self.members, lambda m: m.logs(lines=lines, timeout=timeout))
        parts = []
        for member, text in zip(self.members, texts, strict=True):
            if isinstance(text, NixflyError):
                console.warn(f"{member.name}: could not read the log: {text.message}")
                text = f"(could not read the log: {text.message})\n"
            parts.append(f"==> {member.name} <==\n{text}")
        return "\n".join(parts)

    def rollback(self, to: int) -> str:
        """Every host back to generation ``to`` (default: each one's previous healthy one), or none.

        Every host's lock is taken first; then host after host switches and is verified. When one fails,
        it and every host already switched go back to what they ran before (at once, each verified again):
        the group never ends mixed. Ends with the per-host table (``rollback_table``), also on failure.
        """
        generations = each(self.members, lambda m: m.rollback_generation(to))
        failed = failures(self.members, generations)
        if failed:
            raise one_error(failed, len(self.members), "cannot roll back")
        plan = list(zip(self.members, [g for g in generations if isinstance(g, int)], strict=True))
        if self.s.dry_run:
            said = ", ".join(f"{m.name} to {which(g)}" for m, g in plan)
            console.say(f"[dry-run] would roll back {self.s.app}, one host after another: {said}")
            return f"would roll back {len(plan)} hosts"
        command = f"rollback --target {self.spec}" + (f" --to {to}" if to else "")
        revision = git.revision(self.here, self.s.root)
        with lock.held(self.s.state_dir, self.s.app, revision, command):
            self.lock_all(command)
            self._record_before()
            switched: list[HostTarget] = []
            for member, generation in plan:
                report = self.reports[member.name]
                try:
                    member.activation.switch_to(generation)
                except NixflyError as exc:
                    report.after, report.result = _generation(generation), f"FAILED: {exc.message}"
                    try:
                        self._undo_rollback([member, *switched[::-1]], exc)
                    finally:
                        self.rollback_table = self._table()
                    raise
                report.after, report.result = _generation(generation), "rolled back, healthy"
                switched.append(member)
            self.rollback_table = self._table()
        return f"{self.s.app} rolled back on {len(plan)} hosts: " + ", ".join(
            f"{m.name} ({_generation(g)})" for m, g in plan
        )

    def _record_before(self) -> None:
        """Each host's live generation before a rollback: its table's "before", and where it goes back."""
        lives = each(self.members, lambda m: m.activation.records().live)
        for member, live in zip(self.members, lives, strict=True):
            number = None if isinstance(live, NixflyError) or live is None else live.generation
            self.reports[member.name] = HostReport(before=_generation(number), after=_generation(number))

    def _undo_rollback(self, back: list[HostTarget], error: NixflyError) -> None:
        """A group rollback failed on ``back[0]``: it and the hosts switched before it return, at once, to
        what they ran before; ``error`` says where each host ended."""
        outcomes = each(back, lambda m: m.activation.restore(NixflyError("")))
        restored, broken = [], []
        for member, outcome in zip(back, outcomes, strict=True):
            report = self.reports[member.name]
            was_failed = member is back[0]
            if isinstance(outcome, NixflyError) or outcome.status == "failed":
                detail = outcome.message if isinstance(outcome, NixflyError) else outcome.detail
                report.after = "?"
                report.result = (f"{report.result}; " if was_failed else "") + f"going back FAILED: {detail}"
                broken.append(f"{member.name}: {detail}")
                continue
            report.after = report.before if outcome.status == "done" else "stopped"
            report.result = (f"{report.result}; " if was_failed else "") + "back where it started"
            restored.append(f"{member.name} ({report.after})")
        if restored:
            error.add_note(f"the group rollback is undone, back where they started: {', '.join(restored)}")
        untouched = [m.name for m in self.members if m not in back]
        if untouched:
            error.add_note(f"not reached, left as they were: {', '.join(untouched)}")
        if broken:
            error.add_note(f"going back FAILED on {'; '.join(broken)}")
            error.hint = f"the group is mixed: `inv status --target {self.spec}` shows each host"

    def stop(self) -> str:
        """Every host's process, at once, once every host's lock is held."""
        if self.s.dry_run:
            return "\n".join(f"{self.s.app} on {m.name}: {m.activation.stop()}" for m in self.members)
        self.lock_all(f"stop --target {self.spec}")
        results = each(self.members, lambda m: m.activation.stop())
        failed = failures(self.members, results)
        if failed:
            raise one_error(failed, len(self.members), "could not stop")
        return "\n".join(f"{self.s.app} on {m.name}: {r}" for m, r in zip(self.members, results, strict=True))

    def label(self) -> str:
        return f" on {self.spec}"

    def deploy_command(self) -> str:
        return f"deploy --mode {self.s.mode.name} --target {self.spec}"

    def lock_status(self) -> None:
        """``inv lock.status``: each host's lock of the app, and who holds it."""
        states = each(self.members, lambda m: m.lock_state())
        rows: list[tuple[str, ...]] = []
        for member, state in zip(self.members, states, strict=True):
            if isinstance(state, NixflyError):
                rows.append((member.name, "UNREADABLE", state.message))
            else:
                rows.append((member.name, *state))
        lock_table(self.s.app, self.spec, rows)
        failed = failures(self.members, states)
        if failed:
            raise one_error(failed, len(self.members), "could not read the lock")

    def lock_release(self, *, force: bool) -> None:
        """``inv lock.release``: remove each host's stale lock (any, with ``force``); refusals are listed."""
        removed = each(self.members, lambda m: m.lock.force_release(force=force))
        for member, holder in zip(self.members, removed, strict=True):
            if not isinstance(holder, NixflyError):
                console.ok(released(self.s.app, member.name, holder))
        failed = failures(self.members, removed)
        if failed:
            raise one_error(failed, len(self.members), "kept the lock")

    def close(self) -> None:
        """Release the locks this run holds and the connections."""
        each(self.members, lambda m: m.close())
