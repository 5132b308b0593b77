"""Hosts' receipts: one file per generation, on the host, beside the generation it describes.

The generation's closure is on the host (its profile link keeps it alive), so its receipt is kept there
too: ``<app dir>/profile-<N>-receipt.json`` (``receipt.host_file``), written after the generation was
verified. Any checkout that can reach the host reads it with the generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from nixfly import git, receipt, sbom
from nixfly.config import Settings
from nixfly.flysecrets import Fingerprints
from nixfly.hosts.host import Host
from nixfly.pipeline import Outcome, Table, done, planned, skipped
from nixfly.runner import Runner


def path(app_dir: PurePosixPath, generation: int) -> PurePosixPath:
    return PurePosixPath(receipt.host_file(Path(app_dir), generation))


def sbom_digest(here: Runner, store_path: str) -> str:
    """The digest of the closure's SBOM when the closure is in this machine's store ("" when it was built
    elsewhere and copied straight to the host: there is nothing here to describe)."""
    if not Path(store_path).exists():
        return ""
    return receipt.digest_of(sbom.to_json(sbom.manifest_of(here, store_path)))


def made(
    s: Settings, here: Runner, *, target: str, generation: int, store_path: str, smoke: str, started_at: str
) -> receipt.Receipt:
    """Generation ``generation``'s receipt (hosts run no image and no flyctl: those fields stay empty)."""
    return receipt.Receipt(
        app=s.app,
        mode=s.mode.name,
        target=target,
        release=generation,
        revision=git.revision(here, s.root),
        dirty=git.is_dirty(here, s.root),
        closure=store_path,
        sbom_digest=sbom_digest(here, store_path),
        smoke=receipt.Smoke(store_path, smoke or "unknown", receipt.smoke_tests(s.mode.smoke)),
        started_at=started_at,
        finished_at=receipt.now(),
        fly_toml=s.fly_config.read_text(),
        secrets=Fingerprints(s.state_dir, s.app).load(),
    )


def write(host: Host, app_dir: PurePosixPath, kept: receipt.Receipt) -> PurePosixPath:
    where = path(app_dir, kept.release)
    host.write_text(where, kept.to_json())
    return where


def read(host: Host, app_dir: PurePosixPath, generation: int) -> receipt.Receipt | None:
    text = host.read_text(path(app_dir, generation))
    return receipt.from_json(text, str(path(app_dir, generation))) if text.strip() else None


def group_outcome(kept: Sequence[tuple[str, tuple[int, PurePosixPath] | None, Outcome]]) -> Outcome:
    """A group's receipts step from each host's (``HostTarget.write_receipt``): written (done) if any host's
    was, else skipped; its table names each host's generation and receipt (in ``--json`` too)."""
    if any(outcome.status == "planned" for _, _, outcome in kept):
        return planned(f"would write each host's receipt beside its new generation ({len(kept)} hosts)")
    written = [name for name, _, outcome in kept if outcome.status == "done"]
    rows = tuple(
        (
            name,
            where[0] if where else "-",
            str(where[1]) if where else "-",
            {"done": "written", "skipped": "had it"}.get(outcome.status, outcome.status)
            if where
            else outcome.detail,
        )
        for name, where, outcome in kept
    )
    table = Table("receipts, per host", ("host", "generation", "receipt", "this run"), rows)
    had = len(kept) - len(written)
    if not written:
        return skipped(f"every host's live generation has its receipt ({had} hosts)", table)
    return done(
        f"wrote the receipt on {len(written)} of {len(kept)} hosts" + (f"; {had} had theirs" if had else ""),
        table,
    )
