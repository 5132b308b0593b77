"""Is a Fly release healthy? What that means on Fly, judged from machines, checks and the health URL.

Fly is not "every machine started": a first deploy without volumes makes two machines per group (flyctl's
``--ha``), Fly's proxy stops idle ones above ``min_machines_running`` (``auto_stop_machines``), and flyctl
updates a machine that was stopped before a deploy but leaves it stopped and does not wait for it
(internal/command/deploy/machines_launchinput.go ``shouldSkipLaunch``). So a release is healthy when:

* the started machines run it and all their checks pass (a stopped or suspended machine is fine, and its
  checks, stale since it stopped, are ignored);
* at least one machine of it is started, and ``min_machines_running`` where the fly toml sets it;
* no machine of it has failed (``failed``, ``destroyed``) — and stopped machines are reported as crashed when
  the started ones fail their checks;
* the health URL answers 2xx from this release (its ``/health`` names the image Fly runs, FLY_IMAGE_REF).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from nixfly.config import Health
from nixfly.errors import NixflyError
from nixfly.flyctl import AppStatus, Check, Flyctl, Machine
from nixfly.probe import Expect, Verdict, http_ok

RUNNING = ("started",)
RESTING = ("stopped", "suspended")


def judge(
    machines: Sequence[Machine],
    checks: dict[str, tuple[Check, ...]],
    *,
    version: int,
    min_running: int = 0,
) -> Verdict:
    """The machines' side of the verdict for release ``version`` (0: whatever is current)."""
    live = [m for m in machines if m.state not in ("destroyed", "destroying")]
    if not live:
        return Verdict(False, "no machines")
    ours = [m for m in live if not version or m.release_version == version]
    started = [m for m in live if m.state in RUNNING]
    behind = [m.id for m in started if version and m.release_version != version]
    if behind:
        return Verdict(False, f"started machines still on an older release: {', '.join(behind)}")
    broken = [f"{m.id} ({m.state})" for m in ours if m.state == "failed"]
    if broken:
        return Verdict(False, f"machines failed: {', '.join(broken)}")
    failing = [
        f"{m.id}:{c.name}={c.status}"
        for m in started
        for c in checks.get(m.id, m.checks)
        if c.status != "passing"
    ]
    if failing:
        resting = [m.id for m in ours if m.state in RESTING]
        crashed = f"; stopped (crashed?): {', '.join(resting)}" if resting else ""
        return Verdict(False, f"checks not passing: {', '.join(failing)}{crashed}")
    need = max(1, min_running)
    if len(started) < need:
        states = ", ".join(f"{m.id}={m.state}" for m in ours) or "none of this release"
        return Verdict(False, f"{len(started)} of at least {need} machine(s) started ({states})")
    idle_count = sum(1 for m in ours if m.state in RESTING)
    idle = f", {idle_count} stopped by autostop (fine)" if idle_count else ""
    return Verdict(True, f"{len(started)} machine(s) started, checks passing{idle}")


def _read_state(
    fly: Flyctl, app: str, pool: ThreadPoolExecutor
) -> tuple[AppStatus | None, dict[str, tuple[Check, ...]]]:
    """Machines and checks, read at once (two round trips in parallel)."""
    status = pool.submit(fly.app_status, app)
    checks = pool.submit(fly.checks, app)
    return status.result(), checks.result()


def wait_healthy(
    fly: Flyctl,
    app: str,
    url: str,
    health: Health,
    *,
    version: int = 0,
    image_ref: str = "",
    min_running: int = 0,
) -> str:
    """Poll until release ``version`` is healthy and ``url`` answers from ``image_ref``; ``NixflyError``
    with the last reason when the deadline passes. The URL is asked first: with autostop, Fly's proxy starts
    a machine for it, which the next read of the machines then sees."""
    deadline = time.monotonic() + health.timeout
    interval = health.interval
    last = Verdict(False, "not checked")
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nixfly-verify")
    try:
        while True:
            http = http_ok(url, health.http_timeout, Expect(release=image_ref)) if url else Verdict(True, "")
            try:
                status, checks = _read_state(fly, app, pool)
                machines = judge(
                    status.machines if status else (), checks, version=version, min_running=min_running
                )
            except NixflyError as exc:
                # flyctl itself failing (after its read retries) says nothing about the app: poll on.
                machines = Verdict(False, exc.message)
            last = Verdict(
                machines.healthy and http.healthy, "; ".join(v.detail for v in (machines, http) if v.detail)
            )
            if last.healthy:
                return last.detail
            if time.monotonic() + interval > deadline:
                raise NixflyError(f"{app} is not healthy after {health.timeout:g}s: {last.detail}")
            time.sleep(interval)
            interval = min(interval * 2, health.max_interval)
    finally:
        # Not `with pool`: on Ctrl-C its exit would wait for the reads in flight (a slow flyctl), while the
        # pipeline stops their flyctl as soon as the interrupt reaches it.
        pool.shutdown(wait=False, cancel_futures=True)
