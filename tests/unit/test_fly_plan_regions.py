"""nixfly.fly.plan: the machines-per-region plan as `fly scale count` will act on it (flyctl
internal/command/scale/count_machines.go, machine_defaults.go), and the checks around it."""

from __future__ import annotations

import pytest

from nixfly.errors import NixflyError
from nixfly.fly.plan import (
    RegionChange,
    ScalePlan,
    after_first_deploy,
    check_primary,
    scale_plan,
    wanted_counts,
)
from nixfly.flyctl import Machine, Volume


def machine(mid: str, region: str, group: str = "app", state: str = "started") -> Machine:
    return Machine(mid, state, region, "registry.fly.io/app:v1", 1, group, ())


def volume(
    vid: str, region: str, attached: str | None = None, *, name: str = "data", host: str = "ok"
) -> Volume:
    return Volume(vid, name, region, "created", attached, host_status=host)


MOUNTS = {"app": "data"}


def plan_of(machines, volumes, wanted, **kw) -> ScalePlan:
    return scale_plan(machines, volumes, wanted, groups=["app"], mounts=MOUNTS, **kw)


def test_growing_creates_a_volume_per_new_machine_unless_an_unattached_one_is_there():
    machines = [machine("m1", "iad")]
    volumes = [volume("v1", "iad", "m1"), volume("spare", "ams"), volume("far", "syd")]
    plan = plan_of(machines, volumes, {"iad": 2, "ams": 2})
    iad, ams = plan.changes
    assert (iad.now, iad.wanted, iad.new_volumes, iad.reuse) == (1, 2, 1, ())
    assert (ams.now, ams.wanted, ams.new_volumes, ams.reuse) == (0, 2, 1, ("spare",))
    assert plan.grow == (iad, ams) and plan.shrink == () and plan.needed
    assert (
        plan.describe() == "iad 1→2: +1 machine(s), +1 new volume(s); ams 0→2: +2 machine(s), +1 new "
        "volume(s), reusing volume(s) spare"
    )


def test_new_volumes_never_reuses_and_a_volume_whose_host_is_down_is_never_reused():
    volumes = [
        volume("spare", "ams"),
        volume("down", "ams", host="unreachable"),
        volume("other", "ams", name="x"),
    ]
    (ams,) = plan_of([machine("m1", "iad")], volumes, {"ams": 1}).changes
    assert ams.reuse == ("spare",)
    (ams,) = plan_of([machine("m1", "iad")], volumes[1:], {"ams": 1}).changes
    assert ams.reuse == () and ams.new_volumes == 1
    (ams,) = plan_of([machine("m1", "iad")], volumes, {"ams": 1}, new_volumes=True).changes
    assert ams.reuse == () and ams.new_volumes == 1


def test_a_group_without_a_mount_gets_no_volumes():
    plan = scale_plan([machine("m1", "iad")], [], {"iad": 3}, groups=["app"], mounts={})
    assert plan.changes == (RegionChange("iad", "app", 1, 3),)


def test_shrinking_removes_the_regions_first_listed_machines_and_names_their_volumes():
    machines = [machine("a", "iad"), machine("b", "ams"), machine("c", "iad"), machine("d", "iad")]
    volumes = [volume("va", "iad", "a"), volume("vc", "iad", "c"), volume("vd", "iad", "d")]
    (iad,) = plan_of(machines, volumes, {"iad": 1}).changes
    assert iad.remove == ("a", "c") and iad.freed == ("va", "vc")
    plan = ScalePlan((iad,))
    assert plan.freed == ("va", "vc") and plan.shrink == (iad,)
    assert iad.describe() == "iad 3→1: removes a, c, leaving volume(s) va, vc"


def test_a_shrink_removes_machines_serving_nothing_before_started_ones():
    machines = [
        machine("a", "iad"),
        machine("b", "iad", state="stopped"),
        machine("c", "iad", state="created"),
    ]
    (iad,) = plan_of(machines, [volume("vb", "iad", "b")], {"iad": 1}).changes
    assert iad.remove == ("b", "c") and iad.freed == ("vb",)


def test_nothing_to_do_says_so():
    machines = [machine("a", "iad"), machine("b", "ams")]
    plan = plan_of(machines, [], {"iad": 1, "ams": 1})
    assert not plan.needed and plan.describe() == "already iad=1 ams=1"


def test_counts_are_per_process_group():
    machines = [machine("w", "iad", "web"), machine("k", "iad", "worker"), machine("k2", "iad", "worker")]
    plan = scale_plan(machines, [], {"iad": 1}, groups=["web", "worker"], mounts={})
    assert [(c.group, c.delta) for c in plan.changes] == [("web", 0), ("worker", -1)]


def test_declared_regions_send_undeclared_ones_to_zero_but_counts_by_hand_leave_them():
    machines = [machine("a", "iad"), machine("b", "ord"), machine("c", "ord", group="other")]
    assert wanted_counts({"iad": 2}, machines, ["app"], exhaustive=True) == {"ord": 0, "iad": 2}
    assert wanted_counts({"iad": 2}, machines, ["app"], exhaustive=False) == {"iad": 2}


@pytest.mark.parametrize(
    ("wanted", "current"),
    [({"iad": 1, "ams": 1}, {}), ({"ams": 2}, {"iad": 1, "ams": 0}), ({"iad": 0, "ams": 0}, {"iad": 2})],
)
def test_the_primary_region_keeps_a_machine_unless_every_region_goes_to_zero(wanted, current):
    check_primary(wanted, current, "iad", "fly.toml")


@pytest.mark.parametrize(("wanted", "current"), [({"ams": 2}, {}), ({"iad": 0}, {"iad": 1, "ams": 1})])
def test_an_empty_primary_region_is_refused(wanted, current):
    with pytest.raises(NixflyError, match="the primary region iad would have no machine while ams would"):
        check_primary(wanted, current, "iad", "fly.toml")


def test_a_new_app_is_planned_from_what_its_first_deploy_makes():
    machines, volumes = after_first_deploy(["app"], {"app": "data"}, "iad")
    assert [(m.region, m.group) for m in machines] == [("iad", "app")]
    assert [(v.name, v.region, v.attached_machine_id) for v in volumes] == [("data", "iad", machines[0].id)]
    machines, volumes = after_first_deploy(["web", "worker"], {}, "ord")
    assert [m.group for m in machines] == ["web", "web", "worker", "worker"] and volumes == ()
    (iad,) = plan_of(*after_first_deploy(["app"], MOUNTS, "iad"), {"iad": 2}).changes
    assert (iad.now, iad.new_volumes) == (1, 1)
