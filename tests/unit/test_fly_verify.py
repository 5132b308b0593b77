"""nixfly.fly.verify: what "healthy" means on Fly (judge), and the poll until it is (wait_healthy)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from helpers.fakes import Served, machine, serving

from nixfly.config import Health
from nixfly.errors import NixflyError
from nixfly.fly.verify import judge, wait_healthy
from nixfly.flyctl import AppStatus, Check, Machine

# --- judge --------------------------------------------------------------------------------------------------


def test_no_machines_is_not_healthy():
    assert judge([], {}, version=1).detail == "no machines"
    gone = [machine("m1", "destroyed"), machine("m2", "destroying")]
    assert not judge(gone, {}, version=1).healthy


def test_started_machines_of_the_release_with_passing_checks_are_healthy():
    verdict = judge([machine("m1", version=2), machine("m2", version=2)], {}, version=2)
    assert verdict.healthy and verdict.detail == "2 machine(s) started, checks passing"


def test_machines_stopped_by_autostop_are_fine_and_their_stale_checks_ignored():
    machines = [
        machine("m1", version=2),
        machine("m2", "stopped", version=2, checks={"http": "critical"}),
        machine("m3", "suspended", version=2, checks={"http": "critical"}),
    ]
    verdict = judge(machines, {}, version=2)
    assert verdict.healthy
    assert verdict.detail == "1 machine(s) started, checks passing, 2 stopped by autostop (fine)"


def test_a_started_machine_still_on_an_older_release_is_not_healthy():
    verdict = judge([machine("m1", version=2), machine("m2", version=1)], {}, version=2)
    assert not verdict.healthy
    assert verdict.detail == "iad: not on v2: m2 (started, v1)"


def test_a_stopped_machine_still_on_an_older_release_was_never_reached():
    # flyctl updates a stopped machine's config in place and leaves it stopped (machines_launchinput.go
    # shouldSkipLaunch): a stopped machine on the old release is one the deploy did not reach.
    verdict = judge([machine("m1", version=2), machine("m2", "stopped", version=1)], {}, version=2)
    assert not verdict.healthy and verdict.detail == "iad: not on v2: m2 (stopped, v1)"


def test_a_failed_machine_of_the_release_is_not_healthy():
    verdict = judge([machine("m1", version=2), machine("m2", "failed", version=2)], {}, version=2)
    assert not verdict.healthy and verdict.detail == "iad: machines failed: m2"


def test_failing_checks_name_the_machine_and_call_stopped_ones_crashed():
    machines = [machine("m1", version=2, checks={"http": "critical"}), machine("m2", "stopped", version=2)]
    verdict = judge(machines, {}, version=2)
    assert not verdict.healthy
    assert verdict.detail == "iad: checks not passing: m1:http=critical; stopped (crashed?): m2"


def test_a_warning_check_is_not_passing():
    verdict = judge([machine("m1", checks={"http": "warning"})], {}, version=1)
    assert not verdict.healthy and "m1:http=warning" in verdict.detail


def test_checks_read_separately_replace_the_machines_own():
    machines = [machine("m1", checks={"http": "critical"})]
    assert judge(machines, {"m1": (Check("http", "passing"),)}, version=1).healthy
    fresh = {"m1": (Check("http", "passing"), Check("tcp", "critical"))}
    assert judge([machine("m1")], fresh, version=1).detail == "iad: checks not passing: m1:tcp=critical"


def test_a_started_machine_with_checks_configured_but_no_results_yet_is_not_passing():
    """flyctl's gate (leasable_machine.go WaitForHealthchecksToPass): Total == 0 keeps it waiting."""
    silent = machine("m2", version=2, checks={}, configured=1)
    verdict = judge([machine("m1", version=2), silent], {}, version=2)
    assert not verdict.healthy
    assert verdict.detail == "iad: no check results yet from m2 (1 configured)"
    # Results read separately count; a machine whose config defines no checks has nothing to wait for.
    assert judge([silent], {"m2": (Check("c", "passing"),)}, version=2).healthy
    assert judge([machine("m3", version=2, checks={}, configured=0)], {}, version=2).healthy


def test_min_machines_running_is_required():
    machines = [machine("m1", version=3), machine("m2", "stopped", version=3)]
    assert judge(machines, {}, version=3, min_running=1).healthy
    verdict = judge(machines, {}, version=3, min_running=2)
    assert not verdict.healthy
    assert verdict.detail == "1 of at least 2 machine(s) started (m1=started, m2=stopped)"


def test_at_least_one_machine_must_be_started():
    verdict = judge([machine("m1", "stopped", version=3)], {}, version=3)
    assert not verdict.healthy and verdict.detail == "0 of at least 1 machine(s) started (m1=stopped)"


def test_version_zero_accepts_whatever_is_current():
    assert judge([machine("m1", version=7)], {}, version=0).healthy


def test_destroyed_machines_are_left_out():
    machines = [machine("m1", version=2), machine("m0", "destroyed", version=1)]
    assert judge(machines, {}, version=2).healthy


# --- wait_healthy -------------------------------------------------------------------------------------------

FAST = Health(timeout=0.5, interval=0.01, max_interval=0.02, http_timeout=1)
IMAGE = "registry.fly.io/app:v2"


class Fly:
    """What wait_healthy asks of flyctl: the machines (one answer per poll, the last repeats) and checks."""

    def __init__(self, *polls: Sequence[Machine] | Exception) -> None:
        self.polls = list(polls)
        self.reads = 0

    def app_status(self, app: str) -> AppStatus | None:
        self.reads += 1
        answer = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        if isinstance(answer, Exception):
            raise answer
        return AppStatus(app, "deployed", 2, f"{app}.fly.dev", tuple(answer))

    def checks(self, app: str) -> dict[str, tuple[Check, ...]]:
        return {}


def test_returns_once_machines_and_the_health_url_agree():
    with serving(Served(body={"status": "ok", "release": IMAGE})) as health:
        healthy = wait_healthy(
            Fly([machine("m1", version=2)]), "app", health.url, FAST, version=2, image_ref=IMAGE
        )
    assert (
        healthy.detail == f"1 machine(s) started, checks passing; GET {health.url} → 200 from release {IMAGE}"
    )
    assert [m.id for m in healthy.machines] == ["m1"]


def test_polls_until_the_new_release_answers():
    fly = Fly([machine("m1", version=1)], [machine("m1", version=1)], [machine("m1", version=2)])
    with serving(Served(body={"release": IMAGE})) as health:
        wait_healthy(fly, "app", health.url, FAST, version=2, image_ref=IMAGE)
    assert fly.reads == 3


def test_a_flyctl_failure_while_polling_is_not_the_verdict():
    fly = Fly(NixflyError("flyctl status failed"), [machine("m1", version=2)])
    assert wait_healthy(fly, "app", "", FAST, version=2).detail.startswith("1 machine(s) started")
    assert fly.reads == 2


def test_an_answer_from_another_release_fails_with_the_last_reason():
    with (
        serving(Served(body={"release": "registry.fly.io/app:v1"})) as health,
        pytest.raises(NixflyError) as info,
    ):
        wait_healthy(Fly([machine("m1", version=2)]), "app", health.url, FAST, version=2, image_ref=IMAGE)
    message = info.value.message
    assert message.startswith("app is not healthy after 0.5s: 1 machine(s) started, checks passing; ")
    assert f"from release 'registry.fly.io/app:v1', not the expected '{IMAGE}'" in message
    assert health.hits >= 2  # it kept asking until the deadline


def test_a_machine_with_no_check_results_keeps_the_gate_waiting_to_its_timeout_and_is_named():
    fly = Fly([machine("m1", version=2), machine("m7", version=2, checks={}, configured=2)])
    with pytest.raises(NixflyError) as info:
        wait_healthy(fly, "app", "", FAST, version=2)
    assert (
        info.value.message
        == "app is not healthy after 0.5s: iad: no check results yet from m7 (2 configured)"
    )
    assert fly.reads >= 2  # it kept asking until the deadline


def test_unhealthy_machines_fail_even_when_the_url_answers():
    fly = Fly([machine("m1", "failed", version=2)])
    with (
        serving(Served(body={"release": IMAGE})) as health,
        pytest.raises(NixflyError, match=r"iad: machines failed: m1"),
    ):
        wait_healthy(fly, "app", health.url, FAST, version=2, image_ref=IMAGE)
