"""A group of SSH hosts as one deploy target: the closure goes to all of them at once, then the release rolls
through them in batches, each batch health-gated before the next starts.

    host locks (every host, or none) → copy (every host at once) →
    activate h1 … hk (batch 1) → verify h1 … hk → activate the next batch → verify it → …
        └─ a failure: the failed host and every host already switched go back to their previous
           generation, each verified again; hosts not reached are left as they were

Each host is a ``HostTarget`` (its own SSH connection, lock and activation); this module only orders them.
What is slow and independent runs concurrently, a thread per host (at most ``PARALLEL``): the locks, the
``nix copy``\\ s, the preflight and status reads. Activation within a batch runs one host after another, on
purpose: switching a host is a few SSH round trips (stop, profile switch, start), while the health wait
dominates, and the batch's processes, started back to back, warm up together, so verifying them in turn costs
about one wait, not one per host. It keeps one step per host in the summary and in ``--json``, and a Ctrl-C
lands between two hosts, never in the middle of several.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from nixfly import console, git, lock
from nixfly.buildhost import BuildHost
from nixfly.cli import print_json
from nixfly.config import Settings
from nixfly.errors import NixflyError
from nixfly.hosts.target import HostTarget
from nixfly.pipeline import Outcome, Pipeline, Step, done, planned, skipped
from nixfly.runner import Runner
from nixfly.target import Candidate, Options, TargetSpec

# Hosts talked to at once (copies, locks, reads): enough for a rack, few enough for one SSH agent.
PARALLEL = 8

T = TypeVar("T")


def each(members: Sequence[HostTarget], action: Callable[[HostTarget], T]) -> list[T | NixflyError]:
    """``action`` on every member at once; in member order, each result or the ``NixflyError`` it raised.

    Anything else a thread raises (a bug) is raised here. On Ctrl-C this returns at once, without waiting:
    the pipeline stops every child process, whichever thread started it.
    """
    pool = ThreadPoolExecutor(max_workers=min(PARALLEL, len(members)) or 1, thread_name_prefix="nixfly-host")
    try:
        futures = [pool.submit(action, member) for member in members]
        wait(futures)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    results: list[T | NixflyError] = []
    for future in futures:
        error = future.exception()
        if error is not None and not isinstance(error, NixflyError):
            raise error
        results.append(error if isinstance(error, NixflyError) else future.result())
    return results


def batches(members: Sequence[HostTarget], size: int) -> list[list[HostTarget]]:
    """The rollout order: ``size`` hosts at a time, in the order the target lists them."""
    size = max(1, size)
    return [list(members[i : i + size]) for i in range(0, len(members), size)]


Failures = list[tuple[HostTarget, NixflyError]]


def failures(members: Sequence[HostTarget], results: Sequence[object]) -> Failures:
    """The members whose result is an error, with it."""
    return [(m, r) for m, r in zip(members, results, strict=True) if isinstance(r, NixflyError)]


def one_error(failed: Failures, total: int, what: str) -> NixflyError:
    """Several hosts' errors as one, each host named once."""

    def named(member: HostTarget, exc: NixflyError) -> str:
        return exc.message if member.name in exc.message else f"{member.name}: {exc.message}"

    if len(failed) == 1:
        member, exc = failed[0]
        return NixflyError(f"{what}: {named(member, exc)}", exc.hint)
    said = "; ".join(named(m, exc) for m, exc in failed)
    return NixflyError(f"{what} on {len(failed)} of {total} hosts: {said}", failed[0][1].hint)


def _generation(number: int | None) -> str:
    return f"generation {number}" if number else "-"


@dataclass
class HostReport:
    """One row of the per-host table a rollout ends with."""

    before: str = "-"
    after: str = "-"
    result: str = "not reached: untouched"


class FleetTarget:
    """Several hosts behind one ``Target``: ``ssh://a,ssh://b`` or a group from ``nixfly.targets``.

    Built over a single host too (``local`` or one ``ssh://``), for the tasks that treat every host target
    alike (``inv lock.status``, ``inv lock.release``).
    """

    def __init__(
        self,
        settings: Settings,
        spec: TargetSpec,
        *,
        port: int = 0,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.s = settings
        self.spec = spec
        singles = [TargetSpec("ssh", host) for host in spec.hosts] if spec.kind == "fleet" else [spec]
        self.members = [HostTarget(settings, one, port=port, overrides=overrides) for one in singles]
        self.here = Runner(dry_run=settings.dry_run, cwd=settings.root)
        self.options = Options()
        # Filled by a deploy: the hosts whose activation began, in order, and the per-host table.
        self.reached: list[HostTarget] = []
        self.reports: dict[str, HostReport] = {}

    @property
    def dry(self) -> bool:
        return self.s.dry_run

    def _member(self, name: str) -> HostTarget | None:
        return next((m for m in self.members if m.name == name), None)

    # --- Target: the deploy ---------------------------------------------------------------------------------
    def preflight(self, build: BuildHost, *, skip_build: bool) -> list[str]:
        results = each(self.members, lambda m: m.preflight(build, skip_build=skip_build))
        failed = failures(self.members, results)
        if failed:
            raise one_error(failed, len(self.members), "cannot deploy")
        return list(dict.fromkeys(c for checked in results if isinstance(checked, list) for c in checked))

    def observe(self) -> None:
        """Each host's state is read once its lock is held (``claim_all``)."""

    def deploy_steps(self, candidate: Candidate, build: BuildHost, options: Options) -> list[Step]:
        self.options = options
        command = f"deploy --mode {self.s.mode.name} --target {self.spec}"
        steps: list[Step] = [
            ("host locks", lambda: self.claim_all(command)),
            ("copy", lambda: self.copy_all(candidate)),
        ]
        for batch in batches(self.members, options.batch):
            steps += [(f"activate {m.name}", partial(self.activate, m, candidate)) for m in batch]
            steps += [(f"verify {m.name}", partial(self.verify, m)) for m in batch]
        return steps

    def claim_all(self, command: str) -> Outcome:
        """Every host's lock, or none: a host that is locked or cannot be reached stops the run here."""
        revision = git.revision(self.here, self.s.root)
        results = each(self.members, lambda m: m.claim(command, revision))
        failed = failures(self.members, results)
        if failed:
            each(self.members, lambda m: m.lock.release())
            error = one_error(failed, len(self.members), "cannot lock")
            error.add_note("no host was changed")
            raise error
        lives = each(self.members, lambda m: m.activation.records().live)
        for member, live in zip(self.members, lives, strict=True):
            number = None if isinstance(live, NixflyError) or live is None else live.generation
            self.reports[member.name] = HostReport(before=_generation(number), after=_generation(number))
        if self.dry:
            return planned(f"would lock {self.s.app} on {len(self.members)} hosts")
        return done(f"{self.s.app} locked on {len(self.members)} hosts by pid {os.getpid()}")

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
        if self.dry:
            return planned(f"would copy the closure to {len(self.members)} hosts at once")
        copied = [m.name for m, o in zip(self.members, outcomes, strict=True) if o.status == "done"]
        if not copied:
            return skipped("built on the only host: nothing to copy")
        return done(f"copied {candidate.store_path} to {len(copied)} hosts at once")

    def activate(self, member: HostTarget, candidate: Candidate) -> Outcome:
        self.reached.append(member)
        outcome = member.activate(candidate)
        report = self.reports[member.name]
        if outcome.status == "skipped":
            report.result = "already live"
        elif not self.dry:
            report.after, report.result = _generation(self._started(member)), "started, not verified"
        return outcome

    def verify(self, member: HostTarget) -> Outcome:
        outcome = member.activation.verify()
        if outcome.status == "done":
            self.reports[member.name].result = "deployed, healthy"
        return outcome

    @staticmethod
    def _started(member: HostTarget) -> int | None:
        started = member.activation.candidate
        return started.generation if started else None

    def recover(self, pipeline: Pipeline, step: str, error: NixflyError) -> None:
        """The failed host first, then every host switched before it (newest first), each verified again."""
        failed = self._member(step.partition(" ")[2]) if step.startswith(("activate ", "verify ")) else None
        switched = [m for m in self.reached if m.activation.candidate is not None and m is not failed]
        if failed is not None:
            self.reports[failed.name].result = f"FAILED: {error.message}"
        if failed is None and not switched:
            return
        back = []
        for member in ([failed] if failed and failed.activation.candidate else []) + switched[::-1]:
            # The failed host's restore explains itself on the error; the others are summed up below.
            sink = error if member is failed else NixflyError("")
            restore = partial(member.activation.restore, sink, auto=self.options.rollback)
            before = self.reports[member.name].before
            outcome = pipeline.run_extra(f"rollback {member.name}", restore)
            report = self.reports[member.name]
            if outcome.status == "done":
                report.after = before
                back.append(f"{member.name} ({before})")
                if member is not failed:
                    report.result = "rolled back with the group"
            elif outcome.detail == "--no-rollback":
                report.result += "; left running (--no-rollback)"
            elif outcome.status == "skipped":
                report.after = "stopped"
                if member is not failed:
                    report.result = "stopped with the group (its first deploy)"
            else:
                report.after = "?"
                report.result = f"{report.result}; " if member is failed else ""
                report.result += f"rollback FAILED: {outcome.detail}"
                if member is not failed:
                    error.add_note(f"rolling back {member.name} FAILED too: {outcome.detail}")
        if switched and self.options.rollback:
            others = [b for b in back if not failed or not b.startswith(f"{failed.name} ")]
            if others:
                error.add_note(f"rolled back with it: {', '.join(others)}")
        untouched = [m.name for m in self.members if m not in self.reached]
        if untouched:
            error.add_note(f"not reached, left as they were: {', '.join(untouched)}")

    def interrupted(self, step: str) -> str:
        switched = [m for m in self.reached if m.activation.candidate is not None]
        if self.dry or not switched:
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
        """Each host, one after another, back to generation ``to`` (default: its previous healthy one).

        Every host's lock is taken first; a host whose rollback fails is restored and stops the run.
        """
        generations = each(self.members, lambda m: m.rollback_generation(to))
        failed = failures(self.members, generations)
        if failed:
            raise one_error(failed, len(self.members), "cannot roll back")
        plan = list(zip(self.members, [g for g in generations if isinstance(g, int)], strict=True))
        if self.dry:
            said = ", ".join(f"{m.name} to generation {g}" for m, g in plan)
            console.say(f"[dry-run] would roll back {self.s.app}, one host after another: {said}")
            return f"would roll back {len(plan)} hosts"
        command = f"rollback --target {self.spec}" + (f" --to {to}" if to else "")
        revision = git.revision(self.here, self.s.root)
        with lock.held(self.s.state_dir, self.s.app, revision, command):
            self.claim_all(command)
            lines = []
            for index, (member, generation) in enumerate(plan):
                try:
                    detail = member.go_back(generation)
                    lines.append(f"generation {generation} live on {member.name}: {detail}")
                except NixflyError as exc:
                    if index:
                        exc.add_note(f"rolled back before it: {', '.join(m.name for m, _ in plan[:index])}")
                    rest = [m.name for m, _ in plan[index + 1 :]]
                    if rest:
                        exc.add_note(f"not reached, left as they were: {', '.join(rest)}")
                    raise
        return "\n".join(lines)

    def stop(self) -> str:
        """Every host's process, at once, once every host's lock is held."""
        if self.dry:
            return "\n".join(f"{self.s.app} on {m.name}: {m.activation.stop()}" for m in self.members)
        self.claim_all(f"stop --target {self.spec}")
        results = each(self.members, lambda m: m.activation.stop())
        failed = failures(self.members, results)
        if failed:
            raise one_error(failed, len(self.members), "could not stop")
        return "\n".join(f"{self.s.app} on {m.name}: {r}" for m, r in zip(self.members, results, strict=True))

    def lock_status(self) -> None:
        """``inv lock.status``: each host's lock of the app, and who holds it."""
        states = each(self.members, lambda m: m.lock_state())
        rows: list[tuple[str, ...]] = []
        for member, state in zip(self.members, states, strict=True):
            if isinstance(state, NixflyError):
                rows.append((member.name, "UNREADABLE", state.message))
            else:
                rows.append((member.name, *state))
        console.table(f"deploy locks of {self.s.app} on {self.spec}", ("host", "lock", "holder"), rows)
        failed = failures(self.members, states)
        if failed:
            raise one_error(failed, len(self.members), "could not read the lock")

    def lock_release(self, *, force: bool) -> None:
        """``inv lock.release``: remove each host's stale lock (any, with ``force``); refusals are listed."""
        released = each(self.members, lambda m: m.lock.force_release(force=force))
        for member, holder in zip(self.members, released, strict=True):
            if holder is None:
                console.ok(f"{self.s.app} on {member.name}: was not locked")
            elif not isinstance(holder, NixflyError):
                console.ok(f"{self.s.app} on {member.name}: released the lock of {holder.describe()}")
        failed = failures(self.members, released)
        if failed:
            raise one_error(failed, len(self.members), "kept the lock")

    def close(self) -> None:
        """End a rollout with its per-host table (after the step summary, however it ended); release the
        locks this run holds and the connections."""
        if self.reports and not self.dry:
            console.table(
                f"{self.s.app} on {self.spec}: per host",
                ("host", "before", "after", "result"),
                [(name, r.before, r.after, r.result) for name, r in self.reports.items()],
            )
        each(self.members, lambda m: m.close())
