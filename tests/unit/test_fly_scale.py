"""nixfly.fly.scale: the Scaler's checks and refusals, decided before any flyctl runs (no flyctl here: a
Scaler that tried to run one would fail, there being no runner behind it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from nixfly.config import Health, resolve
from nixfly.errors import NixflyError
from nixfly.fly.scale import Applied, Scaler, plan_table
from nixfly.flyctl import Machine, Volume

TOML = """app = "oneshot"
primary_region = "iad"
[processes]
app = "/bin/start-oneshot"
[[mounts]]
source = "oneshot_data"
destination = "/data"
[http_service]
internal_port = 4000
"""


def scaler(tmp_path: Path, wanted: dict[str, int], **kw) -> Scaler:
    (tmp_path / "fly-integrated.toml").write_text(TOML)
    return Scaler(resolve(None, tmp_path), None, wanted, **kw)  # type: ignore[arg-type]


def machine(mid: str, region: str) -> Machine:
    return Machine(mid, "started", region, "img", 1, "app", ())


def volume(vid: str, region: str, attached: str | None) -> Volume:
    return Volume(vid, "oneshot_data", region, "created", attached, host_status="ok")


MACHINES = [machine("a", "iad"), machine("b", "iad"), machine("c", "ams")]
VOLUMES = [volume("va", "iad", "a"), volume("vb", "iad", "b"), volume("vc", "ams", "c")]


def test_groups_and_mounts_come_from_the_fly_toml(tmp_path):
    s = scaler(tmp_path, {"iad": 2}, exhaustive=True)
    assert s.groups == ["app"] and s.mounts == {"app": "oneshot_data"} and s.counts == "iad=2"


def test_a_shrink_that_strands_volumes_is_refused_naming_them_and_the_command_that_would_do_it(tmp_path):
    with pytest.raises(NixflyError) as refused:
        scaler(tmp_path, {"iad": 1}, exhaustive=True).plan(MACHINES, VOLUMES)
    assert refused.value.message == (
        "converging to ams=0 iad=1 removes machines whose volumes hold data (ams: vc; iad: va)"
    )
    assert refused.value.hint is not None
    assert refused.value.hint.startswith("`inv scale --mode integrated ams=0,iad=1 --destroy-volumes`")
    plan = scaler(tmp_path, {"iad": 1}, exhaustive=True, destroy_volumes=True).plan(MACHINES, VOLUMES)
    assert plan.freed == ("vc", "va")


def test_counts_by_hand_leave_other_regions_alone(tmp_path):
    plan = scaler(tmp_path, {"iad": 3}, exhaustive=False).plan(MACHINES, VOLUMES)
    assert [(c.region, c.now, c.wanted) for c in plan.changes] == [("iad", 2, 3)]


def test_regions_fly_does_not_have_and_an_empty_primary_are_refused(tmp_path):
    with pytest.raises(NixflyError, match="Fly has no region xyz, zzz"):
        scaler(tmp_path, {"iad": 1, "xyz": 1, "zzz": 1}, exhaustive=True).check_regions(["iad", "ams"])
    with pytest.raises(NixflyError, match="primary region iad would have no machine while ams would"):
        scaler(tmp_path, {"ams": 1}, exhaustive=True).check_regions(["iad", "ams"])
    scaler(tmp_path, {"ams": 1}, exhaustive=False).check_regions(["iad", "ams"])  # iad keeps its machines


def test_expected_machines_per_region_and_the_plan_table(tmp_path):
    s = scaler(tmp_path, {"iad": 3, "syd": 1}, exhaustive=True)
    plan = s.plan(MACHINES[:2], VOLUMES[:2])
    assert s.expected(plan) == {"iad": 3, "syd": 1}
    table = plan_table("t", plan)
    assert table.as_json()["rows"][0] == {
        "region": "iad",
        "group": "app",
        "now": 2,
        "wanted": 3,
        "new_volumes": 1,
        "reused_volumes": (),
        "remove": (),
        "free_volumes": (),
    }


def test_applied_says_what_changed():
    assert Applied(2, ("v1", "v2"), 1, ("v9",)).describe() == (
        "created 2 machine(s), 2 volume(s); removed 1 machine(s); destroyed volume(s) v9"
    )


class UnbindingFly:
    """Fly that unbinds a destroyed machine's volume only after ``polls`` more volume reads."""

    def __init__(self, polls: int) -> None:
        self.polls = polls
        self.destroyed: list[str] = []
        self.reads = 0

    def volumes(self, app: str) -> list[Volume]:
        self.reads += 1
        bound = "m-gone" if self.reads <= self.polls else None
        return [volume("va", "iad", bound)] if "va" not in self.destroyed else []

    def destroy_volume(self, app: str, volume_id: str) -> None:
        assert self.reads > self.polls, "destroyed while still bound"
        self.destroyed.append(volume_id)


def unbinding(tmp_path: Path, fly: UnbindingFly, timeout: float) -> Scaler:
    found = scaler(tmp_path, {"iad": 1}, exhaustive=False, destroy_volumes=True)
    found.s = replace(
        found.s, health=Health(timeout=timeout, interval=0.01, max_interval=0.02, http_timeout=1)
    )
    found.fly = fly  # type: ignore[assignment]
    return found


def test_a_named_volume_is_destroyed_once_fly_has_unbound_it(tmp_path):
    fly = UnbindingFly(polls=3)
    assert unbinding(tmp_path, fly, timeout=30)._destroy_unbound(["va"]) == ("va",)
    assert fly.destroyed == ["va"] and fly.reads == 4


def test_a_volume_still_bound_when_the_wait_runs_out_is_named_with_how_to_finish(tmp_path):
    fly = UnbindingFly(polls=10**9)
    with pytest.raises(NixflyError) as info:
        unbinding(tmp_path, fly, timeout=0.2)._destroy_unbound(["va"])
    assert info.value.message.startswith("Fly has not unbound volume(s) va (bound to m-gone)")
    assert "KEPT" in info.value.message
    assert "`flyctl volumes destroy va --app oneshot --yes`" in (info.value.hint or "")
    assert fly.destroyed == []
