"""nixfly.fly.verify: a release judged healthy the way Fly means it, region by region, and the per-region
table of status and summaries."""

from __future__ import annotations

import pytest

from nixfly import flytoml
from nixfly.errors import NixflyError
from nixfly.fly.verify import judge, min_machines_running, region_table
from nixfly.flyctl import Check, Machine

PASS = (Check("http", "passing"),)
FAIL = (Check("http", "critical"),)


def machine(mid: str, region: str, state: str = "started", version: int = 2, checks=PASS) -> Machine:
    return Machine(mid, state, region, "img", version, "app", checks)


def test_every_region_healthy_with_machines_stopped_by_autostop():
    machines = [
        machine("a", "iad"),
        machine("b", "iad", "stopped", checks=FAIL),
        machine("c", "ams", "stopped"),
    ]
    verdict = judge(machines, {}, version=2, min_running=1)
    assert verdict.healthy
    assert verdict.detail == "1 machine(s) started in 2 regions, checks passing, 2 stopped by autostop (fine)"


def test_a_problem_is_named_with_its_region():
    machines = [machine("a", "iad"), machine("b", "ams", checks=FAIL), machine("c", "ams", "stopped")]
    verdict = judge(machines, {}, version=2)
    assert not verdict.healthy
    assert verdict.detail == "ams: checks not passing: b:http=critical; stopped (crashed?): c"


def test_checks_list_overrides_what_status_said():
    verdict = judge([machine("a", "iad")], {"a": FAIL}, version=2)
    assert verdict.detail == "iad: checks not passing: a:http=critical"


def test_every_machine_must_carry_the_release_stopped_ones_too():
    machines = [machine("a", "iad"), machine("b", "ams", "stopped", version=1)]
    verdict = judge(machines, {}, version=2)
    assert verdict.detail == "ams: not on v2: b (stopped, v1)"
    assert judge(machines, {}, version=0).healthy  # 0: whatever is current


def test_a_failed_machine_fails_its_region():
    verdict = judge([machine("a", "iad"), machine("b", "syd", "failed")], {}, version=2)
    assert verdict.detail == "syd: machines failed: b"


def test_expected_counts_per_region():
    machines = [machine("a", "iad"), machine("b", "iad")]
    assert judge(machines, {}, version=2, expected={"iad": 2}).healthy
    verdict = judge(machines, {}, version=2, expected={"iad": 2, "ams": 1})
    assert verdict.detail == "ams: 0 machine(s), not 1"
    assert judge([], {}, version=2, expected={"iad": 1}).detail == "no machines; iad: 0 machine(s), not 1"


def test_at_least_one_started_and_min_machines_running():
    stopped = [machine("a", "iad", "stopped"), machine("b", "iad", "stopped")]
    assert judge(stopped, {}, version=2).detail == "0 of at least 1 machine(s) started (a=stopped, b=stopped)"
    two = [machine("a", "iad"), machine("b", "iad", "stopped")]
    assert not judge(two, {}, version=2, min_running=2).healthy


def test_region_table():
    machines = [
        machine("a", "iad"),
        machine("b", "iad", "stopped", checks=FAIL),
        machine("c", "ams", version=1, checks=FAIL),
    ]
    table = region_table("t", machines, {"c": PASS})
    assert table.columns == ("region", "machines", "state", "version", "checks")
    assert table.rows == (
        ("ams", 1, "1 started", "v1", "1/1 passing"),
        ("iad", 2, "1 started, 1 stopped", "v2", "1/1 passing"),
    )
    assert table.as_json()["rows"][0] == {
        "region": "ams",
        "machines": 1,
        "state": "1 started",
        "version": "v1",
        "checks": "1/1 passing",
    }
    assert region_table("t", [machine("s", "syd", "stopped", version=0)]).rows == (
        ("syd", 1, "1 stopped", "-", "-"),
    )


def test_min_machines_running_from_the_fly_toml(tmp_path):
    path = tmp_path / "fly.toml"
    for body, want in [
        ('app = "a"\n[http_service]\nmin_machines_running = 2\n', 2),
        ('app = "a"\n[http_service]\ninternal_port = 8080\n', 0),
        ('app = "a"\n', 0),
    ]:
        path.write_text(body)
        assert min_machines_running(flytoml.load(path)) == want, body
    # flyctl reads it as a number (a Go int): true is refused with the file and key named.
    path.write_text('app = "a"\n[http_service]\nmin_machines_running = true\n')
    with pytest.raises(NixflyError, match=r"http_service\.min_machines_running"):
        flytoml.load(path)
