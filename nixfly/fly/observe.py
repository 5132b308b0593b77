"""What Fly runs now, read concurrently: every read is started at once, each step waits only for its own.

The reads are independent round trips to Fly's API (each a flyctl process), so they run on a small thread
pool while the build and the smoke tests go on; a no-change redeploy then costs one round trip instead of
five in a row. A read that failed raises its error in the step that needs it, so the summary names that
step. For an app that does not exist yet, the reads about its volumes, secrets and releases mean nothing and
read as empty.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from nixfly.fly import receipts
from nixfly.fly.plan import live_release
from nixfly.flyctl import AppStatus, Flyctl, FlyRelease, SecretInfo, Volume
from nixfly.futures import result
from nixfly.receipt import Receipt
from nixfly.sbom import Manifest

T = TypeVar("T")


class Observation:
    """Fly's state for one app, as of the moment it was read (reads only: safe in a dry-run)."""

    def __init__(self, fly: Flyctl, app: str, repository: str = "") -> None:
        # The app's repository in nixfly's registry: where a nixpacks release's receipt is kept.
        self._repository = repository
        self._pool = ThreadPoolExecutor(max_workers=7, thread_name_prefix="nixfly-observe")
        self._account = self._pool.submit(fly.whoami)
        self._status = self._pool.submit(fly.app_status, app)
        self._volumes = self._pool.submit(fly.volumes, app)
        self._secrets = self._pool.submit(fly.secrets, app)
        self._releases = self._pool.submit(fly.releases, app)
        # The flyctl release driven (its secrets parser depends on it): read once per run, with the rest.
        self._flyctl = self._pool.submit(fly.release)
        # What the live release runs (its receipt and SBOM, beside its image): one more round trip, once
        # the releases are read, concurrent with the others; for the plan's diff.
        self._live = self._pool.submit(self._read_live, fly)

    def account(self) -> str:
        return result(self._account)

    def status(self) -> AppStatus | None:
        """The app and its machines; None when the app does not exist."""
        return result(self._status)

    def exists(self) -> bool:
        return self.status() is not None

    def volumes(self) -> list[Volume]:
        return self._of_app(self._volumes, list)

    def secrets(self) -> list[SecretInfo]:
        return self._of_app(self._secrets, list)

    def releases(self) -> list[FlyRelease]:
        return self._of_app(self._releases, list)

    def live_release(self) -> tuple[Receipt, Manifest] | None:
        """The live release's receipt and manifest; None for a new app, or a release without a receipt."""
        return result(self._live)

    def _read_live(self, fly: Flyctl) -> tuple[Receipt, Manifest] | None:
        # A worker thread: plain waits are right here (only the main thread needs nixfly.futures' slices).
        if self._status.result() is None:
            return None
        live = live_release(self._releases.result())
        return receipts.read_whole(fly, live, self._repository) if live is not None else None

    def flyctl_release(self) -> tuple[int, int, int] | None:
        """flyctl's own release; None when it cannot be read (callers then assume the oldest)."""
        return result(self._flyctl)

    def _of_app(self, future: Future[T], empty: Callable[[], T]) -> T:
        if not self.exists():
            return empty()
        return result(future)

    def close(self) -> None:
        """Stop waiting: reads still running are abandoned (their flyctl is stopped by the runner)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
