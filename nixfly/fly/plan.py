"""The deploy's decisions on Fly, as plain functions of what was observed: no flyctl, no files.

Which volume to create, whether to deploy at all, what to roll back to and when: each is decided here from
values the target read, so each is unit-tested without a simulator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nixfly.errors import NixflyError
from nixfly.flyctl import FlyRelease, ReleaseUnhealthy, Volume


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
