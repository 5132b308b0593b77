"""The order of a group rollout and of its rollback, with stand-in activations (no host is contacted).

tests/integration/test_fleet.py runs the same against three real sshd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from nixfly.config import resolve
from nixfly.errors import NixflyError
from nixfly.hosts.group import GroupTarget, HostReport, batches
from nixfly.pipeline import Outcome, Pipeline, done, skipped
from nixfly.runner import Runner
from nixfly.target import Candidate, Options, parse_target

HOSTS = ["root@a", "root@b", "root@c"]


@dataclass
class Stand:
    """What the rollout reads of a host's ``Activation``; ``verify`` and ``restore`` record their calls."""

    name: str
    restored: list[str]
    generation: int | None = None  # started by this run
    verified: bool = False
    healthy: bool = True
    outcome: Outcome = field(default_factory=lambda: done("generation 1 live again"))

    @property
    def candidate(self) -> Any:
        return None if self.generation is None else type("Release", (), {"generation": self.generation})()

    def verify(self) -> Outcome:
        if not self.healthy:
            raise NixflyError(f"oneshot on {self.name} is not healthy after 3s")
        self.verified = True
        return done(f"generation {self.generation} healthy")

    def restore(self, exc: NixflyError, *, auto: bool = True) -> Outcome:
        self.restored.append(self.name)
        exc.add_note(f"restore of {self.name}")  # the group writes its own notes: this one must not show
        self.generation = None
        return self.outcome if auto else skipped("--no-rollback")


def group(tmp_path, restored: list[str], **started: dict[str, Any]) -> GroupTarget:
    """A group of three with stand-in activations; ``started`` (a=…) are the hosts this run reached."""
    s = resolve(None, tmp_path)
    fleet = GroupTarget(s, Runner(cwd=s.root), parse_target(",".join(f"ssh://{h}" for h in HOSTS)), Options())
    for member in fleet.members:
        short = member.name.removeprefix("root@")
        member._activation = Stand(member.name, restored, **started.get(short, {}))  # type: ignore[assignment]
        fleet.reports[member.name] = HostReport(before="generation 1", after="generation 1")
        if short in started:
            fleet.reached.append(member)
    return fleet


def test_batches_keep_the_order_and_the_last_may_be_short(tmp_path):
    members = group(tmp_path, []).members
    assert [[m.name for m in b] for b in batches(members, 2)] == [["root@a", "root@b"], ["root@c"]]
    assert [len(b) for b in batches(members, 1)] == [1, 1, 1]
    assert [len(b) for b in batches(members, 5)] == [3]


def members(fleet: GroupTarget, *names: str) -> list[Any]:
    return [m for name in names for m in fleet.members if m.name == f"root@{name}"]


def test_a_failed_host_and_those_switched_before_it_go_back_at_once(tmp_path):
    restored: list[str] = []
    fleet = group(
        tmp_path, restored, a={"generation": 2, "verified": True}, b={"generation": 2, "healthy": False}
    )
    pipeline = Pipeline("deploy")
    with pytest.raises(NixflyError) as failed:
        fleet.verify(members(fleet, "b"))
    error = failed.value
    assert error.message == "oneshot on root@b is not healthy after 3s"
    fleet.recover(pipeline, "verify root@b", error)
    assert sorted(restored) == ["root@a", "root@b"]
    # One step for the rollback: the failed host first, then the others, newest first.
    assert [(r.step, r.status) for r in pipeline.records] == [("rollback root@b, root@a", "done")]
    assert error.notes == [
        "rolled back to the previous generation, healthy again: root@b (generation 1), root@a (generation 1)",
        "not reached, left as they were: root@c",
    ]
    assert error.hint == "`inv logs --target ssh://root@b` shows its output"
    rows = {name: (r.after, r.result) for name, r in fleet.reports.items()}
    assert rows == {
        "root@a": ("generation 1", "rolled back with the group"),
        "root@b": ("generation 1", "FAILED: oneshot on root@b is not healthy after 3s"),
        "root@c": ("generation 1", "not reached: untouched"),
    }


def test_every_failed_host_of_a_batch_is_named(tmp_path):
    fleet = group(
        tmp_path,
        [],
        a={"generation": 2, "healthy": False},
        b={"generation": 2},
        c={"generation": 2, "healthy": False},
    )
    with pytest.raises(NixflyError) as failed:
        fleet.verify(fleet.members)
    assert failed.value.message == (
        "2 of 3 hosts failed: oneshot on root@a is not healthy after 3s; "
        "oneshot on root@c is not healthy after 3s"
    )
    assert [r.result for r in fleet.reports.values()] == [
        "FAILED: oneshot on root@a is not healthy after 3s",
        "deployed, healthy",
        "FAILED: oneshot on root@c is not healthy after 3s",
    ]


def test_a_failed_rollback_and_a_first_deploy_say_so(tmp_path):
    restored: list[str] = []
    fleet = group(
        tmp_path,
        restored,
        a={"generation": 1, "verified": True, "outcome": skipped("first deploy: nothing to roll back to")},
        b={"generation": 2, "verified": True, "outcome": Outcome("failed", "port 4000 did not answer")},
        c={"generation": 2, "healthy": False},
    )
    pipeline = Pipeline("deploy")
    with pytest.raises(NixflyError) as failed:
        fleet.verify(members(fleet, "c"))
    fleet.recover(pipeline, "verify root@c", failed.value)
    assert [(r.step, r.status) for r in pipeline.records] == [("rollback root@c, root@b, root@a", "failed")]
    assert failed.value.notes == [
        "rolled back to the previous generation, healthy again: root@c (generation 1)",
        "stopped, nothing to roll back to (first deploy): root@a",
        "rolling back FAILED too on root@b: port 4000 did not answer",
    ]
    rows = {name: (r.after, r.result) for name, r in fleet.reports.items()}
    assert rows == {
        "root@a": ("stopped", "stopped with the group (its first deploy)"),
        "root@b": ("?", "rollback FAILED: port 4000 did not answer"),
        "root@c": ("generation 1", "FAILED: oneshot on root@c is not healthy after 3s"),
    }


def test_no_rollback_leaves_every_switched_host_running(tmp_path):
    restored: list[str] = []
    fleet = group(
        tmp_path, restored, a={"generation": 2, "verified": True}, b={"generation": 2, "healthy": False}
    )
    fleet.options = Options(rollback=False)
    pipeline = Pipeline("deploy")
    with pytest.raises(NixflyError) as failed:
        fleet.verify(members(fleet, "b"))
    fleet.recover(pipeline, "verify root@b", failed.value)
    assert [(r.step, r.status, r.detail) for r in pipeline.records] == [
        ("rollback root@b, root@a", "skipped", "--no-rollback")
    ]
    assert failed.value.notes[0] == (
        "automatic rollback is off: still running the new release: "
        "root@b (generation 2), root@a (generation 2)"
    )
    assert (
        fleet.reports["root@b"].result
        == "FAILED: oneshot on root@b is not healthy after 3s; left running (--no-rollback)"
    )


def test_nothing_to_roll_back_before_any_host_was_switched(tmp_path):
    restored: list[str] = []
    fleet = group(tmp_path, restored)
    pipeline = Pipeline("deploy")
    error = NixflyError("nix copy failed")
    fleet.recover(pipeline, "copy", error)
    assert restored == [] and pipeline.records == [] and error.notes == []


def test_a_ctrl_c_names_the_switched_hosts_and_how_to_put_them_back(tmp_path):
    fleet = group(tmp_path, [], a={"generation": 4, "verified": True}, b={"generation": 4})
    said = fleet.interrupted("verify root@b")
    assert said == (
        "root@a runs generation 4 (verified); root@b runs generation 4 (unverified); not rolled back: "
        "`inv rollback --target ssh://root@a,ssh://root@b` puts them back"
    )
    assert fleet.reports["root@c"].result == "not reached: untouched"


def test_the_deploys_options_reach_every_host_as_given_once(tmp_path):
    """``--force`` and ``--no-rollback`` are the group's and each host's alike: set when the target is opened,
    never overwritten by ``deploy_steps``."""
    s = resolve(None, tmp_path)
    options = Options(force=True, rollback=False, batch=2)
    fleet = GroupTarget(s, Runner(cwd=s.root), parse_target("ssh://a,ssh://b,ssh://c"), options)
    assert fleet.options is options and all(member.options is options for member in fleet.members)
    steps = [name for name, _ in fleet.deploy_steps(Candidate(), None)]  # type: ignore[arg-type]
    assert steps == [
        "host locks",
        "diff",
        "copy",
        "activate a, b",
        "verify a, b",
        "activate c",
        "verify c",
        "receipts",
    ]
    assert fleet.options is options
