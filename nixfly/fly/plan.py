"""The deploy's decisions on Fly, as plain functions of what was observed: no flyctl, no files.

Which volume to create, whether to deploy at all, what to roll back to and when: each is decided here from
values the target read, so each is unit-tested without a simulator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from nixfly.errors import NixflyError
from nixfly.flyctl import FlyRelease, Machine, ReleaseUnhealthy, Volume


def live_release(releases: Sequence[FlyRelease]) -> FlyRelease | None:
    """The newest release that completed: what runs now, and what a failed deploy goes back to."""
    return next((r for r in sorted(releases, key=lambda r: -r.version) if r.complete), None)


def existing_volume(volumes: Sequence[Volume], name: str) -> Volume | None:
    """A volume of that name, in any region. flyctl creates a second same-named volume when asked twice,
    so "ensure" means: list first, create only if there is none."""
    return next((v for v in volumes if v.name == name), None)


def inputs_digest(
    builder: str,
    store_path: str,
    image_ref: str,
    strategy: str,
    files: Sequence[bytes],
    prints: Mapping[str, str],
) -> str:
    """What a deploy is made of: closure (or image), strategy, configs, and the secrets' fingerprints."""
    digest = hashlib.sha256(f"{builder}\0{store_path}\0{image_ref}\0{strategy}\0".encode())
    for content in files:
        digest.update(hashlib.sha256(content).digest())
    digest.update(repr(sorted(prints.items())).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class DeployDecision:
    deploy: bool
    reason: str


def deploy_decision(
    live: FlyRelease | None, record: Mapping[str, Any], inputs: str, *, force: bool
) -> DeployDecision:
    """Deploy unless the live release is the one nixfly last deployed from exactly these inputs."""
    if live is None:
        return DeployDecision(True, "first deploy")
    if force:
        return DeployDecision(True, "--force")
    if record.get("version") != live.version:
        return DeployDecision(
            True, f"v{live.version} is live but nixfly did not deploy it from this checkout"
        )
    if record.get("inputs") != inputs:
        return DeployDecision(True, "the closure, config or secrets changed")
    return DeployDecision(False, f"v{live.version} is live and nothing changed (--force redeploys)")


Recovery = Literal["nothing", "keep", "first", "roll back"]


def recovery(
    step: str, error: NixflyError, *, released: bool, rollback: bool, previous: FlyRelease | None
) -> Recovery:
    """After ``step`` failed: ``nothing`` to undo (no release was made), ``keep`` the bad release
    (--no-rollback), ``first`` deploy (nothing to go back to), or ``roll back`` to ``previous``.

    ``released`` says whether a new release exists (asked of Fly when the deploy itself failed); a deploy that
    failed its health checks always made one.
    """
    if step not in ("deploy", "verify"):
        return "nothing"
    if step == "deploy" and not isinstance(error, ReleaseUnhealthy) and not released:
        return "nothing"
    if not rollback:
        return "keep"
    if previous is None:
        return "first"
    return "roll back"


def rollback_choice(releases: Sequence[FlyRelease], to: int) -> tuple[FlyRelease, FlyRelease]:
    """(current, chosen) for ``inv rollback``: release ``to``, else the newest complete one before current."""
    ordered = sorted(releases, key=lambda r: -r.version)
    if not ordered:
        raise NixflyError("the app has no releases", "deploy first: `inv deploy`")
    current = ordered[0]
    if to:
        chosen = next((r for r in ordered if r.version == to), None)
        if chosen is None:
            raise NixflyError(f"there is no release v{to}", "`inv releases` lists them")
        if not chosen.image_ref:
            raise NixflyError(
                f"release v{to} has no image to redeploy", "`inv releases --json` shows each image"
            )
        return current, chosen
    older = [r for r in ordered if r.complete and r.image_ref and r.version < current.version]
    if not older:
        raise NixflyError("there is no earlier healthy release to go back to", "`inv releases` lists them")
    return current, older[0]


# --- machines per region: what growing (`fly scale count`) and shrinking (by ID) do, region by region -------
@dataclass(frozen=True)
class RegionChange:
    """One process group in one region: machines now → wanted, and what that does to volumes.

    Growing is ``fly scale count``, predicted as internal/command/scale/count_machines.go acts: an added
    machine takes an unattached volume of the mount's name in its region whose host is ok (``reuse``), else
    a new one is created (``new_volumes``). Shrinking is NOT left to it (it destroys the first machines in
    the API's list order, which nixfly cannot see: ``fly status`` sorts by ID): nixfly chooses the machines
    (``remove``, see ``_to_remove``) and destroys exactly those by ID, leaving their volumes, data and all
    (``freed``).
    """

    region: str
    group: str
    now: int
    wanted: int
    reuse: tuple[str, ...] = ()
    new_volumes: int = 0
    remove: tuple[str, ...] = ()
    freed: tuple[str, ...] = ()

    @property
    def delta(self) -> int:
        return self.wanted - self.now

    def describe(self) -> str:
        head = f"{self.region} {self.now}→{self.wanted}"
        if self.delta > 0:
            made = [f"+{self.delta} machine(s)"]
            made += [f"+{self.new_volumes} new volume(s)"] if self.new_volumes else []
            made += [f"reusing volume(s) {', '.join(self.reuse)}"] if self.reuse else []
            return f"{head}: {', '.join(made)}"
        if self.delta < 0:
            freed = f", leaving volume(s) {', '.join(self.freed)}" if self.freed else ""
            return f"{head}: removes {', '.join(self.remove)}{freed}"
        return f"{self.region} {self.now}"


@dataclass(frozen=True)
class ScalePlan:
    changes: tuple[RegionChange, ...]

    @property
    def grow(self) -> tuple[RegionChange, ...]:
        return tuple(c for c in self.changes if c.delta > 0)

    @property
    def shrink(self) -> tuple[RegionChange, ...]:
        return tuple(c for c in self.changes if c.delta < 0)

    @property
    def freed(self) -> tuple[str, ...]:
        """Volumes left without a machine (holding data) if the plan is applied."""
        return tuple(v for c in self.shrink for v in c.freed)

    @property
    def needed(self) -> bool:
        return any(c.delta for c in self.changes)

    def describe(self) -> str:
        moving = [c.describe() for c in self.changes if c.delta]
        return "; ".join(moving) if moving else "already " + self.counts()

    def counts(self) -> str:
        return " ".join(f"{c.region}={c.wanted}" for c in self.changes)

    def now(self) -> str:
        return " ".join(f"{c.region}={c.now}" for c in self.changes)


def wanted_counts(
    declared: Mapping[str, int], machines: Sequence[Machine], groups: Sequence[str], *, exhaustive: bool
) -> dict[str, int]:
    """The count per region to converge to. ``exhaustive`` (the mode's declared regions): a region with
    machines that is not declared goes to 0; otherwise (``inv scale iad=2``) only the named regions move."""
    if not exhaustive:
        return dict(declared)
    current = [m.region for m in machines if m.group in groups]
    return {**dict.fromkeys(sorted(set(current) - set(declared)), 0), **declared}


def after_first_deploy(
    groups: Sequence[str], mounts: Mapping[str, str], region: str
) -> tuple[tuple[Machine, ...], tuple[Volume, ...]]:
    """The machines (and their volumes) a first ``fly deploy`` leaves, to plan from in a dry-run of a new
    app: per group, in the primary region, one machine on the volume the deploy's volume step made when the
    group mounts one, else two (a second for availability, or a standby: both are machines of the group;
    deploy/machines_deploymachinesapp.go, ``--ha`` being on by default)."""
    machines: list[Machine] = []
    volumes: list[Volume] = []
    for group in groups:
        for n in range(1 if mounts.get(group) else 2):
            mid = f"(new {group} machine {n + 1})"
            machines.append(Machine(mid, "started", region, "", 0, group, ()))
            if mounts.get(group):
                volumes.append(Volume(f"(new {mounts[group]})", mounts[group], region, "created", mid))
    return tuple(machines), tuple(volumes)


def check_primary(wanted: Mapping[str, int], current: Mapping[str, int], primary: str, config: str) -> None:
    """Fly puts an app's first machine (and its volume) in the primary region, and ``min_machines_running``
    counts there: the primary region keeps at least one machine unless every region goes to 0."""
    after = {**current, **wanted}
    if after.get(primary, 0) == 0 and any(after.values()):
        elsewhere = ", ".join(r for r, n in sorted(after.items()) if n)
        raise NixflyError(
            f"the primary region {primary} would have no machine while {elsewhere} would",
            f"keep {primary}=1 or more, or set primary_region in {config} to one of {elsewhere}",
        )


def scale_plan(
    machines: Sequence[Machine],
    volumes: Sequence[Volume],
    wanted: Mapping[str, int],
    *,
    groups: Sequence[str],
    mounts: Mapping[str, str],
    new_volumes: bool = False,
) -> ScalePlan:
    """Per region and group: ``wanted`` machines (``machines`` in the order Fly lists them; ``mounts`` maps a
    group to the name of the volume each of its machines mounts)."""
    attached = {v.attached_machine_id: v.id for v in volumes if v.attached_machine_id}
    spare: dict[tuple[str, str], list[str]] = {}
    if not new_volumes:
        for v in volumes:
            if not v.attached_machine_id and v.host_status == "ok":
                spare.setdefault((v.name, v.region), []).append(v.id)
    changes = []
    for group in groups:
        mount = mounts.get(group, "")
        for region, count in wanted.items():
            here = [m for m in machines if m.group == group and m.region == region]
            change = RegionChange(region, group, len(here), count)
            if change.delta > 0 and mount:
                pool = spare.get((mount, region), [])
                reuse, spare[(mount, region)] = tuple(pool[: change.delta]), pool[change.delta :]
                change = replace(change, reuse=reuse, new_volumes=change.delta - len(reuse))
            elif change.delta < 0:
                remove = _to_remove(here, -change.delta)
                freed = tuple(attached[mid] for mid in remove if mid in attached)
                change = replace(change, remove=remove, freed=freed)
            changes.append(change)
    return ScalePlan(tuple(changes))


def _to_remove(machines: Sequence[Machine], count: int) -> tuple[str, ...]:
    """The ``count`` machines a shrink destroys: those serving nothing first (stopped, suspended, a standby
    never started, failed), then the started ones, each kind in the order Fly listed them."""
    ordered = sorted(machines, key=lambda m: m.state == "started")  # stable: False (idle) sorts first
    return tuple(m.id for m in ordered[:count])
