"""Machines per region on Fly, converged with ``fly scale count``: plan → (dry-run stops) → apply → verify.

Growing is Fly's own engine: one ``fly scale count N --region R --process-group G`` per region that grows
(internal/command/scale/count_machines.go). New machines clone the group's first machine, so an app must
have been deployed once; each new machine gets a volume of its own in its region (an unattached one of the
mount's name, else a new one). Shrinking is nixfly's: the plan names the machines to remove and ``fly
machine destroy`` removes exactly those, by ID (scale count would pick the first in the API's order, which
no read shows). Removing machines leaves their volumes with their data, so a plan that would do that is
refused unless the user asked, with ``--destroy-volumes``, to destroy exactly those volumes; the plan names
them, and each is destroyed once Fly has unbound it. Regions grow before any shrinks. A second run with
nothing changed changes nothing.

``Scaler`` is shared by ``inv scale`` (``run``, below) and the deploy's ``regions`` and ``scale`` steps.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from nixfly import console, flytoml, lock
from nixfly.config import Settings, region_counts
from nixfly.errors import NixflyError
from nixfly.fly.plan import ScalePlan, check_primary, scale_plan, wanted_counts
from nixfly.fly.verify import Healthy, wait_for
from nixfly.flyctl import Flyctl, Machine, Volume, find_executable
from nixfly.pipeline import Outcome, Pipeline, Table, done, planned, skipped
from nixfly.runner import Runner

PLAN_COLUMNS = ("region", "group", "now", "wanted", "new_volumes", "reused_volumes", "remove", "free_volumes")


def plan_table(title: str, plan: ScalePlan) -> Table:
    """The plan per region and group; ``free_volumes`` are the volumes the removed machines leave."""
    return Table(
        title,
        PLAN_COLUMNS,
        tuple(
            (c.region, c.group, c.now, c.wanted, c.new_volumes, c.reuse, c.remove, c.freed)
            for c in plan.changes
        ),
    )


@dataclass(frozen=True)
class Applied:
    created_machines: int
    created_volumes: tuple[str, ...]
    removed_machines: int
    destroyed_volumes: tuple[str, ...]

    def describe(self) -> str:
        parts = [
            f"created {self.created_machines} machine(s), {len(self.created_volumes)} volume(s)",
            f"removed {self.removed_machines} machine(s)",
        ]
        if self.destroyed_volumes:
            parts.append(f"destroyed volume(s) {', '.join(self.destroyed_volumes)}")
        return "; ".join(parts)


class Scaler:
    """The mode's process groups, their volumes, and the counts per region wanted of them."""

    def __init__(
        self,
        settings: Settings,
        fly: Flyctl,
        wanted: Mapping[str, int],
        *,
        exhaustive: bool,
        destroy_volumes: bool = False,
        new_volumes: bool = False,
    ) -> None:
        self.s = settings
        self.fly = fly
        self.declared = dict(wanted)
        self.exhaustive = exhaustive
        self.destroy_volumes = destroy_volumes
        self.new_volumes = new_volumes
        toml = flytoml.load(settings.fly_config)
        self.groups = toml.groups
        # One mount per process group (fly.toml [[mounts]], `processes` or every group).
        self.mounts = {
            group: str(m.get("source", ""))
            for m in toml.mounts
            for group in (m.get("processes") or toml.groups)
        }

    @property
    def counts(self) -> str:
        return " ".join(f"{region}={n}" for region, n in self.declared.items())

    def check_regions(self, known: Sequence[str]) -> None:
        """Refuse codes Fly does not offer (asked of Fly: ``fly platform regions``) and, for the declared
        regions, an empty primary region; both before anything changes."""
        unknown = sorted(set(self.declared) - set(known))
        if unknown:
            raise NixflyError(
                f"Fly has no region {', '.join(unknown)}",
                "`fly platform regions` lists the codes (e.g. iad, ams, syd)",
            )
        if self.exhaustive:
            check_primary(self.declared, {}, self.s.region, self.s.mode.fly_config)

    def plan(self, machines: Sequence[Machine], volumes: Sequence[Volume]) -> ScalePlan:
        """What converging takes from this state; refused when it would leave volumes (and their data)
        without a machine and ``--destroy-volumes`` was not given."""
        wanted = wanted_counts(self.declared, machines, self.groups, exhaustive=self.exhaustive)
        current = Counter(m.region for m in machines if m.group in self.groups)
        check_primary(wanted, current, self.s.region, self.s.mode.fly_config)
        plan = scale_plan(
            machines, volumes, wanted, groups=self.groups, mounts=self.mounts, new_volumes=self.new_volumes
        )
        if plan.freed and not self.destroy_volumes:
            where = "; ".join(f"{c.region}: {', '.join(c.freed)}" for c in plan.shrink if c.freed)
            shrink = ",".join(f"{c.region}={c.wanted}" for c in plan.shrink)
            raise NixflyError(
                f"converging to {plan.counts()} removes machines whose volumes hold data ({where})",
                f"`inv scale --mode {self.s.mode.name} {shrink} --destroy-volumes` removes them and destroys "
                "exactly those volumes; or keep the machines",
            )
        return plan

    def apply(
        self, plan: ScalePlan, machines_before: Sequence[Machine], volumes_before: Sequence[Volume]
    ) -> Applied | None:
        """Grow every region, then shrink by destroying exactly the machines the plan names; then destroy
        the volumes it named, each once Fly has unbound it. Returns what changed, as read back from Fly
        (None in a dry-run: the commands were only shown)."""
        app = self.s.app
        # One after the other: scale count and machine destroy lease the machines they touch
        # (count_machines.go and destroy.go AcquireLeases), so two at once would refuse each other.
        for change in plan.grow:
            self.fly.scale_count(
                app,
                group=change.group,
                region=change.region,
                count=change.wanted,
                new_volumes=self.new_volumes,
            )
        for change in plan.shrink:
            self.fly.destroy_machines(app, change.remove)
        if self.s.dry_run:
            return None
        destroyed = self._destroy_unbound(plan.freed)
        status = self.fly.app_status(app)
        machines = {m.id for m in status.machines} if status else set()
        volumes = self.fly.volumes(app)
        before = {m.id for m in machines_before}
        return Applied(
            created_machines=len(machines - before),
            created_volumes=tuple(sorted({v.id for v in volumes} - {v.id for v in volumes_before})),
            removed_machines=len(before - machines),
            destroyed_volumes=destroyed,
        )

    def _destroy_unbound(self, named: Sequence[str]) -> tuple[str, ...]:
        """Destroy each volume in ``named`` once Fly has unbound it from its destroyed machine, which Fly does
        some time later ("up to a minute": superfly/terraform-provider-fly #154, #218; until then the API
        refuses with "currently bound to machine"). Polls as the health gate does, within its timeout; when
        that runs out, ``NixflyError`` names the volumes left and how to finish."""
        app, health = self.s.app, self.s.health
        deadline = time.monotonic() + health.timeout
        interval = health.interval
        left, destroyed = list(named), []
        while left:
            found = {v.id: v for v in self.fly.volumes(app)}
            for volume_id in list(left):
                volume = found.get(volume_id)
                if volume is None or not volume.attached_machine_id:
                    if volume is not None:  # None: already gone (volumes list hides destroyed ones)
                        self.fly.destroy_volume(app, volume_id)
                        destroyed.append(volume_id)
                    left.remove(volume_id)
            if left and time.monotonic() + interval > deadline:
                bound = ", ".join(f"{v} (bound to {found[v].attached_machine_id})" for v in left)
                done_too = f"; destroyed {', '.join(destroyed)}" if destroyed else ""
                raise NixflyError(
                    f"Fly has not unbound volume(s) {bound} from their destroyed machines after "
                    f"{health.timeout:g}s: they are KEPT, data and bill{done_too}",
                    f"once `flyctl volumes list --app {app}` shows them unattached, run "
                    + " and ".join(f"`flyctl volumes destroy {v} --app {app} --yes`" for v in left),
                )
            if left:
                time.sleep(interval)
                interval = min(interval * 2, health.max_interval)
        return tuple(destroyed)

    def expected(self, plan: ScalePlan) -> dict[str, int]:
        """Machines per region once the plan is applied (every group of the mode)."""
        found: dict[str, int] = {}
        for change in plan.changes:
            found[change.region] = found.get(change.region, 0) + change.wanted
        return found

    def verify(self, plan: ScalePlan, *, version: int = 0, image_ref: str = "") -> Healthy:
        """Every region has its count, and every machine is healthy (the new ones too) and the health URL
        answers; an app scaled to no machine at all has nothing to answer."""
        s, expected = self.s, self.expected(plan)
        if not any(expected.values()):
            status = self.fly.app_status(s.app)
            if status is not None and not status.machines:
                return Healthy("no machines, as asked", (), {})
        return wait_for(self.fly, s, version=version, image_ref=image_ref, expected=expected)


def set_counts(
    settings: Settings,
    here: Runner,
    counts: str,
    *,
    destroy_volumes: bool,
    new_volumes: bool,
    json_summary: bool,
) -> Pipeline:
    """``inv scale REGION=COUNT,...``: that many machines in each region named; other regions are left as
    they are."""
    wanted = region_counts(counts)
    if not wanted:
        example = f"e.g. `inv scale --mode {settings.mode.name} iad=2,ams=1`"
        raise NixflyError("no REGION=COUNT given", example)
    return ScaleRun(settings, here, wanted, destroy_volumes=destroy_volumes, new_volumes=new_volumes).run(
        json_summary
    )


class ScaleRun:
    """``inv scale`` as steps: preflight → lock → plan → apply → verify (the deploy's lock: one change to an
    app at a time)."""

    def __init__(
        self,
        settings: Settings,
        here: Runner,
        counts: Mapping[str, int],
        *,
        destroy_volumes: bool,
        new_volumes: bool,
    ) -> None:
        self.s = settings
        self.counts = dict(counts)
        self.runner = here
        self.fly = Flyctl(self.runner, settings.flyctl)
        self.scaler = Scaler(
            settings,
            self.fly,
            counts,
            exhaustive=False,
            destroy_volumes=destroy_volumes,
            new_volumes=new_volumes,
        )
        self.plan = ScalePlan(())
        self.machines: Sequence[Machine] = ()
        self.volumes: Sequence[Volume] = ()

    def run(self, json_summary: bool) -> Pipeline:
        s = self.s
        pipeline = Pipeline(
            f"scale {s.mode.name} → {s.app}: {self.scaler.counts}" + (" (dry-run)" if s.dry_run else ""),
            json_summary=json_summary,
            resume_hint="run the same command again: regions already at their count are left alone",
        )
        with ExitStack() as stack:
            pipeline.run(
                [
                    ("preflight", self.preflight),
                    ("lock", lambda: lock.step(stack, self.runner, s, f"scale --mode {s.mode.name}")),
                    ("plan", self.make_plan),
                    ("apply", self.apply),
                    ("verify", self.verify),
                ]
            )
        return pipeline

    def preflight(self) -> Outcome:
        s, declared = self.s, self.s.mode.regions
        find_executable(s.flyctl)
        account = self.fly.whoami()
        self.scaler.check_regions(self.fly.regions())
        if declared and any(declared.get(r) != n for r, n in self.counts.items()):
            console.warn(
                f"nixfly.modes.{s.mode.name}.regions declares "
                f"{' '.join(f'{r}={n}' for r, n in declared.items())}: the next `inv deploy` converges back "
                "to it"
            )
        return done(f"flyctl logged in as {account}; Fly has every region named")

    def make_plan(self) -> Outcome:
        s = self.s
        status = self.fly.app_status(s.app)
        if status is None or not status.machines:
            raise NixflyError(
                f"{s.app} has no machines to scale from",
                f"deploy it first: `inv deploy --mode {s.mode.name}` (new machines clone a deployed one)",
            )
        self.machines, self.volumes = status.machines, self.fly.volumes(s.app)
        self.plan = self.scaler.plan(self.machines, self.volumes)
        table = plan_table(f"{s.app}: machines per region, now → wanted", self.plan)
        if not self.plan.needed:
            return skipped(self.plan.describe(), table)
        return (planned if s.dry_run else done)(self.plan.describe(), table)

    def apply(self) -> Outcome:
        if not self.plan.needed:
            return skipped("nothing to change")
        applied = self.scaler.apply(self.plan, self.machines, self.volumes)
        if applied is None:
            moving = len(self.plan.grow) + len(self.plan.shrink)
            return planned(f"would run fly scale count in {moving} region(s)")
        return done(applied.describe())

    def verify(self) -> Outcome:
        if self.s.dry_run:
            return planned(f"would wait for {self.plan.counts()} and every machine healthy")
        healthy = self.scaler.verify(self.plan)
        return done(healthy.detail, healthy.table(f"{self.s.app}: machines per region"))
