"""Is a Fly release healthy? What that means on Fly, judged from machines, checks and the health URL.

Fly is not "every machine started": a first deploy without volumes makes two machines per group (flyctl's
``--ha``), Fly's proxy stops idle ones above ``min_machines_running`` (``auto_stop_machines``), and flyctl
updates a machine that was stopped before a deploy but leaves it stopped and does not wait for it
(internal/command/deploy/machines_launchinput.go ``shouldSkipLaunch``). So a release is healthy when, in
every region:

* every machine carries it (flyctl updates a stopped machine's config in place, so one that does not was
  never reached);
* the started machines pass all their checks: flyctl's own gate (internal/machine/leasable_machine.go
  ``WaitForHealthchecksToPass``): a machine whose config defines checks needs at least one result, and every
  result ``passing`` (a freshly started machine has none yet, which is not a pass). After ``fly scale
  count`` and ``--strategy immediate`` (rollbacks) flyctl does not wait at all, so this is the only gate
  there. A stopped or suspended machine is fine, and its checks, stale since it stopped, are ignored;
  stopped machines are reported as crashed when the started ones fail;
* no machine has failed;

and overall at least one machine is started (``min_machines_running`` where the fly toml sets it: the proxy
stops the others, and in regions other than the primary all of them), and the health URL answers 2xx from
this release (its ``/health`` names the image Fly runs, FLY_IMAGE_REF). A problem is named with its region.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nixfly import flytoml
from nixfly.config import Health, Settings
from nixfly.errors import NixflyError
from nixfly.flyctl import AppStatus, Check, Flyctl, Machine
from nixfly.flytoml import FlyToml
from nixfly.futures import result
from nixfly.pipeline import Table
from nixfly.probe import Expect, Verdict, http_ok

RUNNING = ("started",)
RESTING = ("stopped", "suspended")


def judge(
    machines: Sequence[Machine],
    checks: Mapping[str, tuple[Check, ...]],
    *,
    version: int,
    min_running: int = 0,
    expected: Mapping[str, int] | None = None,
) -> Verdict:
    """The machines' side of the verdict for release ``version`` (0: whatever is current), region by
    region: as many machines as ``expected`` there (when given), every one carrying the release (flyctl
    updates stopped ones in place too), none failed, every started one passing its checks; then at least
    ``max(1, min_running)`` started."""
    live = [m for m in machines if m.state not in ("destroyed", "destroying")]
    regions = _by_region(live)
    problems = [
        f"{region}: {len(regions.get(region, []))} machine(s), not {count}"
        for region, count in sorted((expected or {}).items())
        if len(regions.get(region, [])) != count
    ]
    if not live:
        return Verdict(False, "; ".join(["no machines", *problems]))
    problems += [
        f"{region}: {problem}"
        for region, here in regions.items()
        if (problem := _region_problem(here, checks, version))
    ]
    if problems:
        return Verdict(False, "; ".join(problems))
    started = [m for m in live if m.state in RUNNING]
    need = max(1, min_running)
    if len(started) < need:
        states = ", ".join(f"{m.id}={m.state}" for m in live)
        return Verdict(False, f"{len(started)} of at least {need} machine(s) started ({states})")
    idle_count = sum(1 for m in live if m.state in RESTING)
    idle = f", {idle_count} stopped by autostop (fine)" if idle_count else ""
    where = f" in {len(regions)} regions" if len(regions) > 1 else ""
    return Verdict(True, f"{len(started)} machine(s) started{where}, checks passing{idle}")


def _by_region(machines: Sequence[Machine]) -> dict[str, list[Machine]]:
    found: dict[str, list[Machine]] = {}
    for m in sorted(machines, key=lambda m: m.region):
        found.setdefault(m.region, []).append(m)
    return found


def _region_problem(
    machines: Sequence[Machine], checks: Mapping[str, tuple[Check, ...]], version: int
) -> str:
    behind = [
        f"{m.id} ({m.state}, v{m.release_version})"
        for m in machines
        if version and m.release_version != version
    ]
    if behind:
        return f"not on v{version}: {', '.join(behind)}"
    broken = [m.id for m in machines if m.state == "failed"]
    if broken:
        return f"machines failed: {', '.join(broken)}"
    # WaitForHealthchecksToPass: `checkStatus.Total == 0 || !checkStatus.AllPassing()` keeps waiting.
    silent = [
        f"{m.id} ({m.configured_checks} configured)"
        for m in machines
        if m.state in RUNNING and m.configured_checks and not checks.get(m.id, m.checks)
    ]
    if silent:
        return f"no check results yet from {', '.join(silent)}"
    failing = [
        f"{m.id}:{c.name}={c.status}"
        for m in machines
        if m.state in RUNNING
        for c in checks.get(m.id, m.checks)
        if c.status != "passing"
    ]
    if failing:
        resting = [m.id for m in machines if m.state in RESTING]
        crashed = f"; stopped (crashed?): {', '.join(resting)}" if resting else ""
        return f"checks not passing: {', '.join(failing)}{crashed}"
    return ""


def min_machines_running(toml: FlyToml) -> int:
    """``[http_service] min_machines_running``: machines the proxy keeps started (in the primary region)."""
    service = toml.raw.get("http_service") or {}
    value = service.get("min_machines_running", 0) if isinstance(service, dict) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


REGION_COLUMNS = ("region", "machines", "state", "version", "checks")


def region_table(
    title: str, machines: Sequence[Machine], checks: Mapping[str, tuple[Check, ...]] | None = None
) -> Table:
    """Per region: how many machines, in which states, on which releases, and the checks of the started
    ones (a stopped machine's checks are stale: Fly stopped probing it)."""
    rows = []
    for region, here in _by_region(machines).items():
        states = Counter(m.state for m in here)
        versions = sorted({m.release_version for m in here})
        started = [c for m in here if m.state in RUNNING for c in (checks or {}).get(m.id, m.checks)]
        passing = sum(1 for c in started if c.status == "passing")
        rows.append(
            (
                region,
                len(here),
                ", ".join(f"{n} {state}" for state, n in sorted(states.items())),
                ", ".join(f"v{v}" if v else "-" for v in versions),
                f"{passing}/{len(started)} passing" if started else "-",
            )
        )
    return Table(title, REGION_COLUMNS, tuple(rows))


def _read_state(
    fly: Flyctl, app: str, pool: ThreadPoolExecutor
) -> tuple[AppStatus | None, dict[str, tuple[Check, ...]]]:
    """Machines and checks, read at once (two round trips in parallel)."""
    status = pool.submit(fly.app_status, app)
    checks = pool.submit(fly.checks, app)
    return result(status), result(checks)


@dataclass(frozen=True)
class Healthy:
    """A release found healthy: what was said about it, and the machines and checks it was judged on."""

    detail: str
    machines: tuple[Machine, ...]
    checks: Mapping[str, tuple[Check, ...]]

    def table(self, title: str) -> Table:
        return region_table(title, self.machines, self.checks)


def wait_healthy(
    fly: Flyctl,
    app: str,
    url: str,
    health: Health,
    *,
    version: int = 0,
    image_ref: str = "",
    min_running: int = 0,
    expected: Mapping[str, int] | None = None,
) -> Healthy:
    """Poll until release ``version`` is healthy (with ``expected`` machines per region, when given) and
    ``url`` answers from ``image_ref``; ``NixflyError`` with the last reason when the deadline passes. The
    URL is asked first: with autostop, Fly's proxy starts a machine for it, which the next read of the
    machines then sees."""
    deadline = time.monotonic() + health.timeout
    interval = health.interval
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nixfly-verify")
    try:
        while True:
            http = http_ok(url, health.http_timeout, Expect(release=image_ref)) if url else Verdict(True, "")
            found: tuple[Machine, ...] = ()
            checks: dict[str, tuple[Check, ...]] = {}
            try:
                status, checks = _read_state(fly, app, pool)
                found = status.machines if status else ()
                machines = judge(found, checks, version=version, min_running=min_running, expected=expected)
            except NixflyError as exc:
                # flyctl itself failing (after its read retries) says nothing about the app: poll on.
                machines = Verdict(False, exc.message)
            detail = "; ".join(v.detail for v in (machines, http) if v.detail)
            if machines.healthy and http.healthy:
                return Healthy(detail, found, checks)
            if time.monotonic() + interval > deadline:
                raise NixflyError(f"{app} is not healthy after {health.timeout:g}s: {detail}")
            time.sleep(interval)
            interval = min(interval * 2, health.max_interval)
    finally:
        # Not `with pool`: on Ctrl-C its exit would wait for the reads in flight (a slow flyctl), while the
        # pipeline stops their flyctl as soon as the interrupt reaches it.
        pool.shutdown(wait=False, cancel_futures=True)


def wait_for(
    fly: Flyctl,
    settings: Settings,
    *,
    version: int,
    image_ref: str,
    expected: Mapping[str, int] | None = None,
) -> Healthy:
    """``wait_healthy`` for the app and health policy of ``settings`` (deploy, rollback and scale alike)."""
    return wait_healthy(
        fly,
        settings.app,
        settings.health_url,
        settings.health,
        version=version,
        image_ref=image_ref,
        min_running=min_machines_running(flytoml.load(settings.fly_config)),
        expected=expected,
    )
