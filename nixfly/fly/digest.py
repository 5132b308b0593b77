"""Is what runs exactly what was pushed? Every machine's image digest against the digest the push produced.

A tag can be moved after a push (by another deploy, a person, a registry mirror); a digest cannot. nixfly
deploys ``registry/app@sha256:…`` (``image.pinned``) and after verify reads, per machine, the digest Fly says
it runs (fly-go machine_types.go ``Machine.ImageRef.Digest``, printed by ``machines list --json`` and
``status --json``). One machine on any other digest fails the release, which is then rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence

from nixfly.errors import NixflyError
from nixfly.flyctl import Machine

GONE = ("destroyed", "destroying")


def strays(machines: Sequence[Machine], digest: str) -> list[Machine]:
    """The live machines that do not run ``digest`` (one Fly reports no digest for counts as a stray)."""
    return [m for m in machines if m.state not in GONE and m.digest != digest]


def require(machines: Sequence[Machine], digest: str) -> str:
    """What was checked, or ``NixflyError`` naming each machine on another digest."""
    wrong = strays(machines, digest)
    if wrong:
        named = ", ".join(f"{m.id} ({m.region}) runs {m.digest or 'no reported digest'}" for m in wrong)
        raise NixflyError(
            f"not every machine runs the pushed image {digest}: {named}",
            "Fly runs other bytes than were pushed: `inv status` shows each machine's image",
        )
    count = sum(1 for m in machines if m.state not in GONE)
    return f"all {count} machine(s) run {short(digest)}"


def short(digest: str) -> str:
    """``sha256:0123456789ab…`` — enough to tell digests apart in a line."""
    algorithm, _, hexits = digest.partition(":")
    return f"{algorithm}:{hexits[:12]}…" if len(hexits) > 12 else digest
