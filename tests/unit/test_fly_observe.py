"""nixfly.fly.observe: Fly's state read concurrently, each answer waited for by the step that needs it."""

from __future__ import annotations

import threading

import pytest

from nixfly.errors import NixflyError
from nixfly.fly.observe import Observation
from nixfly.flyctl import AppStatus, FlyRelease, SecretInfo, Volume

STATUS = AppStatus("app", "deployed", 1, "app.fly.dev", ())


class Reads:
    """flyctl's reads; each blocks until the test releases it, so the test sees them run at once."""

    def __init__(self, status: AppStatus | None = STATUS, fail: str = "") -> None:
        self.status, self.fail = status, fail
        self.started: set[str] = set()
        self.all_started = threading.Event()
        self.go = threading.Event()

    def _read(self, name: str, value):
        self.started.add(name)
        if len(self.started) == 6:
            self.all_started.set()
        assert self.go.wait(5)
        if name == self.fail:
            raise NixflyError(f"{name} failed")
        return value

    def whoami(self) -> str:
        return self._read("whoami", "me@example.com")

    def app_status(self, app: str) -> AppStatus | None:
        return self._read("status", self.status)

    def volumes(self, app: str) -> list[Volume]:
        return self._read("volumes", [Volume("vol_1", "data", "iad", "created", None)])

    def secrets(self, app: str) -> list[SecretInfo]:
        return self._read("secrets", [SecretInfo("TOKEN", "Deployed")])

    def releases(self, app: str) -> list[FlyRelease]:
        return self._read("releases", [FlyRelease(1, "complete", "img", "", "")])

    def release(self) -> tuple[int, int, int] | None:
        return self._read("flyctl", (0, 4, 87))


def test_every_read_starts_at_once():
    reads = Reads()
    seen = Observation(reads, "app")  # type: ignore[arg-type]
    try:
        assert reads.all_started.wait(5), f"only {sorted(reads.started)} started before any finished"
        reads.go.set()
        assert seen.account() == "me@example.com"
        assert seen.exists() and seen.status() == STATUS
        assert [v.name for v in seen.volumes()] == ["data"]
        assert [s.name for s in seen.secrets()] == ["TOKEN"]
        assert [r.version for r in seen.releases()] == [1]
        assert seen.flyctl_release() == (0, 4, 87)
    finally:
        seen.close()


def test_an_app_that_does_not_exist_has_no_volumes_secrets_or_releases():
    reads = Reads(status=None, fail="volumes")  # what flyctl says about them means nothing
    reads.go.set()
    seen = Observation(reads, "app")  # type: ignore[arg-type]
    try:
        assert not seen.exists()
        assert (seen.volumes(), seen.secrets(), seen.releases()) == ([], [], [])
    finally:
        seen.close()


def test_a_failed_read_fails_the_step_that_asks_for_it():
    reads = Reads(fail="secrets")
    reads.go.set()
    seen = Observation(reads, "app")  # type: ignore[arg-type]
    try:
        assert seen.volumes()  # the others are fine
        with pytest.raises(NixflyError, match="secrets failed"):
            seen.secrets()
    finally:
        seen.close()


def test_the_live_release_s_receipt_costs_no_read_when_it_was_not_deployed_by_digest():
    reads = Reads()  # the live release's image is "img": a tag, so there is no receipt beside it
    reads.go.set()
    seen = Observation(reads, "app")  # type: ignore[arg-type]
    try:
        assert seen.live_release() is None
        assert reads.started == {"whoami", "status", "volumes", "secrets", "releases", "flyctl"}
    finally:
        seen.close()


def test_a_new_app_has_no_live_release_to_compare_with():
    reads = Reads(status=None)
    reads.go.set()
    seen = Observation(reads, "app")  # type: ignore[arg-type]
    try:
        assert seen.live_release() is None
    finally:
        seen.close()
