"""``inv rollback --to N`` on Fly, whole: N's image, the fly toml N was deployed with, and what changed since.

Fly's own rollback guide says a rollback "doesn't undo config changes… secrets" and that old images "might be
pruned". nixfly's receipt (``nixfly.receipt``) keeps what that needs: N's app config, N's secrets as keyed
digests, the image's digest and the Nix store path (and derivation) it was pushed from. Secrets cannot be put
back (their values are stored nowhere), so a rollback says which ones changed since N, by name and digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from nixfly import image
from nixfly.errors import NixflyError
from nixfly.files import write_atomic
from nixfly.flyctl import REGISTRY_USER
from nixfly.nix import Nix
from nixfly.receipt import Receipt
from nixfly.runner import Runner
from nixfly.skopeo import Skopeo, auth_file, registry_host


def secrets_since(then: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """Each secret whose keyed digest differs between a release and now: ``NAME: old… → new…``, or added or
    removed since. Digests are HMACs under this machine's key (``secrets.Fingerprints``), never values."""
    lines = []
    for name in sorted({*then, *now}):
        old, new = then.get(name), now.get(name)
        if old == new:
            continue
        if old is None:
            lines.append(f"{name}: set since ({short(new or '')})")
        elif new is None:
            lines.append(f"{name}: no longer recorded (was {short(old)})")
        else:
            lines.append(f"{name}: {short(old)} → {short(new)}")
    return lines


def short(digest: str) -> str:
    return f"{digest[:12]}…" if len(digest) > 12 else digest


def config_file(state_dir: Path, kept: Receipt) -> Path:
    """Release N's fly toml as a file for flyctl's ``--config``; the checkout's own file is untouched."""
    path = state_dir / f"rollback-{kept.app}-v{kept.release}.toml"
    write_atomic(path, kept.fly_toml, mode=0o644)
    return path


def ensure_image(runner: Runner, root: Path, password: str, kept: Receipt) -> str:
    """Make N's image be in the registry again; returns what was done ("" when it was there).

    The same store path gives the same bytes, so the push must give the recorded digest: anything else is
    refused (the image would not be the one N ran)."""
    skopeo = Skopeo(runner)
    with auth_file(registry_host(kept.image), REGISTRY_USER, password) as auth:
        if skopeo.digest(kept.image, auth) is not None:
            return ""
    if not kept.image_store_path:
        raise NixflyError(
            f"v{kept.release}'s image {kept.image} is pruned and its receipt names no store path",
            "deploy the revision it names again: `git checkout <revision> && inv deploy`",
        )
    how = "pushed again from its store path"
    if not Path(kept.image_store_path).exists():
        if not kept.image_deriver:
            raise NixflyError(
                f"v{kept.release}'s image is pruned and {kept.image_store_path} is not in this store",
                "fetch it (`nix copy --from <cache> PATH`), or deploy that revision again",
            )
        if not Path(kept.image_deriver).exists():
            # A garbage collection takes an unrooted image's derivation with it: nothing here can rebuild it.
            raise NixflyError(
                f"v{kept.release}'s image is pruned, and neither {kept.image_store_path} nor its derivation "
                f"{kept.image_deriver} is in this store",
                f"fetch one (`nix copy --from <cache> PATH`), or deploy v{kept.release}'s revision again: "
                f"`git checkout {kept.revision} && inv deploy`",
            )
        Nix(runner, root).realise(kept.image_deriver)
        how = f"rebuilt from {kept.image_deriver}"
    tag = f"{kept.image.partition('@')[0]}:{image.tag_for(kept.image_store_path)}"
    pushed = image.push(runner, kept.image_store_path, tag, password)
    if not runner.dry_run and pushed.digest != kept.image_digest:
        raise NixflyError(
            f"the rebuilt image has digest {pushed.digest}, not v{kept.release}'s {kept.image_digest}",
            "the image build is not reproducible: `inv build --rebuild` shows where it differs",
        )
    return f"the registry had pruned v{kept.release}'s image: {how} ({kept.image_digest})"
