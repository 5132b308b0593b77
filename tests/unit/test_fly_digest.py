"""nixfly.fly.digest: every live machine must run the pushed digest, and a stray is named."""

from __future__ import annotations

import pytest

from nixfly.errors import NixflyError
from nixfly.fly import digest
from nixfly.flyctl import Machine

PUSHED = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def machine(mid: str, sha: str, state: str = "started") -> Machine:
    return Machine(mid, state, "ord", "r/app@" + sha, 2, "app", (), digest=sha)


def test_every_machine_on_the_pushed_digest_passes():
    machines = [machine("m1", PUSHED), machine("m2", PUSHED, "stopped"), machine("m3", OTHER, "destroyed")]
    assert digest.require(machines, PUSHED) == "all 2 machine(s) run sha256:aaaaaaaaaaaa…"


def test_a_machine_on_another_or_no_digest_fails_and_is_named():
    machines = [machine("m1", PUSHED), machine("m2", OTHER), machine("m3", "")]
    assert [m.id for m in digest.strays(machines, PUSHED)] == ["m2", "m3"]
    with pytest.raises(NixflyError) as info:
        digest.require(machines, PUSHED)
    assert info.value.message == (
        f"not every machine runs the pushed image {PUSHED}: m2 (ord) runs {OTHER}, "
        "m3 (ord) runs no reported digest"
    )
