"""Is a release healthy? Machines started, Fly's checks passing, and the app's health URL answering 2xx.

Polled with backoff until a deadline; reads only, so every poll is safe to repeat.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from nixfly.config import Health
from nixfly.errors import NixflyError
from nixfly.flyctl import Flyctl

ACTIVE = ("started", "created", "starting", "replacing", "stopped", "suspended")


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    detail: str


def http_ok(url: str, timeout: float) -> Verdict:
    request = urllib.request.Request(url, headers={"User-Agent": "nixfly-health"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Verdict(200 <= response.status < 300, f"GET {url} → {response.status}")
    except urllib.error.HTTPError as exc:
        return Verdict(False, f"GET {url} → {exc.code}")
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Verdict(False, f"GET {url} failed: {reason}")


def machines_and_checks(fly: Flyctl, app: str) -> Verdict:
    status = fly.status(app)
    machines = [m for m in status.get("Machines") or [] if m.get("state") not in ("destroyed", "destroying")]
    if not machines:
        return Verdict(False, "no machines")
    not_started = [m.get("id", "?") for m in machines if m.get("state") != "started"]
    if not_started:
        return Verdict(False, f"machines not started: {', '.join(not_started)}")
    failing = [
        f"{machine}:{check.get('name')}={check.get('status')}"
        for machine, checks in fly.checks(app).items()
        for check in checks
        if check.get("status") != "passing"
    ]
    if failing:
        return Verdict(False, f"checks not passing: {', '.join(failing)}")
    return Verdict(True, f"{len(machines)} machine(s) started, checks passing")


def wait_healthy(fly: Flyctl, app: str, url: str, health: Health) -> str:
    """Wait until the release is healthy; ``NixflyError`` with the last reason when the deadline passes."""
    deadline = time.monotonic() + health.timeout
    interval = health.interval
    last = Verdict(False, "not checked")
    while True:
        try:
            last = machines_and_checks(fly, app)
        except NixflyError as exc:
            # flyctl itself failing (after its read retries) says nothing about the app: poll on.
            last = Verdict(False, exc.message)
        if last.healthy and url:
            http = http_ok(url, health.http_timeout)
            last = Verdict(http.healthy, f"{last.detail}; {http.detail}")
        if last.healthy:
            return last.detail
        if time.monotonic() + interval > deadline:
            raise NixflyError(f"{app} is not healthy after {health.timeout:g}s: {last.detail}")
        time.sleep(interval)
        interval = min(interval * 2, health.max_interval)
