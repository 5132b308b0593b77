"""``inv deps.update``: recompute the Nix hash of the ai-server's node_modules after bun.lock changed.

It builds with a fake hash, reads the real one from Nix's hash-mismatch error (``deps.parse_mismatch``),
writes it, builds the ai-server again and says what changed. Above ``nix`` and ``deps``: it drives Nix builds,
while every Nix build reads deps' stale-hash explanation.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit, urlunsplit

from nixfly import console
from nixfly.config import Settings
from nixfly.deps import (
    APP,
    LOCKFILE,
    MANIFEST,
    RECORD,
    RELOCK_HINT,
    load_lockfile,
    locked_packages,
    lockfile_sha256,
    manifest_mismatch,
    parse_mismatch,
    read_record,
    record_text,
)
from nixfly.errors import NixflyError
from nixfly.files import write_atomic
from nixfly.nix import argv as nix_argv
from nixfly.nix import error_block
from nixfly.runner import REDACT, Runner

INSTALLABLE = f".#{APP}.node_modules"
# nixpkgs' lib.fakeHash: no content hashes to it, so Nix always builds and reports the real hash.
FAKE_HASH = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
# bun reads the registry from these, first set wins (checked with bun 1.4: BUN_ before NPM_ before npm_).
REGISTRY_VARS = ("BUN_CONFIG_REGISTRY", "NPM_CONFIG_REGISTRY", "npm_config_registry")
DEFAULT_REGISTRY = "https://registry.npmjs.org/"


def registry() -> str:
    """Where bun will fetch from, as the environment decides; credentials in the URL masked."""
    for name in REGISTRY_VARS:
        value = os.environ.get(name, "")
        if value:
            parts = urlsplit(value)
            if parts.username or parts.password:
                host = parts.netloc.rsplit("@", 1)[-1]
                parts = parts._replace(netloc=f"***@{host}")
            return f"{urlunsplit(parts)} (${name})"
    return f"{DEFAULT_REGISTRY} (bun's default; set NPM_CONFIG_REGISTRY or BUN_CONFIG_REGISTRY for a mirror)"


def package_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """``+ name version``, ``- name version``, ``name old → new``, sorted by name."""
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None:
            changes.append(f"+ {name} {new}")
        elif new is None:
            changes.append(f"- {name} {old}")
        elif old != new:
            changes.append(f"{name} {old} → {new}")
    return changes


def update(s: Settings, runner: Runner) -> None:
    """Recompute ai-server/deps.json from bun.lock with Nix, build the ai-server with it, say what changed."""
    root = s.root
    lock = load_lockfile(root / LOCKFILE)
    mismatch = manifest_mismatch(root, lock)
    if mismatch:
        raise NixflyError(mismatch, RELOCK_HINT)
    record_path = root / RECORD
    old_text = record_path.read_text() if record_path.exists() else None
    old = read_record(root)
    lock_sha256, packages = lockfile_sha256(root), locked_packages(lock)
    console.say(f"registry: {registry()}")
    if runner.dry_run:
        console.say(f"[dry-run] would build {INSTALLABLE} with a fake hash, then write the real one")
        return

    started = time.monotonic()
    finished = False
    try:
        write_atomic(record_path, record_text(FAKE_HASH, lock_sha256, packages), mode=0o644)
        with console.progress(f"fetch {APP}'s npm dependencies (nix build {INSTALLABLE})"):
            fetched = runner.run(nix_argv("build", INSTALLABLE, "--no-link"), cwd=root, check=False)
        found = parse_mismatch(fetched.stderr)
        if found is None or not found.ours:
            console.say(REDACT(error_block(fetched.stderr)))
            hint = "see nix's error above"
            if "lockfile had changes" in fetched.stderr:
                hint = f"{LOCKFILE} does not match {MANIFEST}: {RELOCK_HINT}"
            elif "unable to download" in fetched.stderr or "ConnectionRefused" in fetched.stderr:
                hint = "no network to the registry? set NPM_CONFIG_REGISTRY to a reachable mirror"
            raise NixflyError(f"fetching {APP}'s npm dependencies failed (exit {fetched.returncode})", hint)
        write_atomic(record_path, record_text(found.got, lock_sha256, packages), mode=0o644)
        finished = True
    finally:
        if not finished:
            if old_text is None:
                record_path.unlink(missing_ok=True)
            else:
                write_atomic(record_path, old_text, mode=0o644)
    fetch_seconds = time.monotonic() - started

    # Build again: the fixed output is in the store under its real hash now, and the ai-server build checks
    # that its node_modules came from this very bun.lock.
    with console.progress(f"nix build .#{APP}"):
        built = runner.run(nix_argv("build", f".#{APP}", "--no-link"), cwd=root, check=False)
    if built.returncode != 0:
        console.say(REDACT(error_block(built.stderr)))
        raise NixflyError(f"nix build .#{APP} failed with the new hash (exit {built.returncode})", "see nix")

    old_hash = str(old.get("hash") or "(none)")
    changes = package_changes((old.get("lockfile") or {}).get("packages") or {}, packages)
    # Plain lines, not a table: hashes are long and CI logs are grepped.
    if old_hash != found.got:
        console.say(f"{RECORD}: {old_hash} → {found.got}")
    else:
        console.say(f"{RECORD}: unchanged ({found.got})")
    summary = "; ".join(changes) if changes else f"{len(packages)} package(s), no version changes"
    console.say(f"{LOCKFILE}: {summary}")
    console.note(f"fetched in {fetch_seconds:.1f}s")
    if old_hash != found.got:
        console.ok(f"{RECORD} updated: commit it with {LOCKFILE}")
    else:
        console.ok(f"{RECORD} was already right for {LOCKFILE}")
