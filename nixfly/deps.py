"""The ai-server's npm dependencies in the Nix build, and keeping their hash in step with bun.lock.

``ai-server/bun.lock`` pins them; flake.nix fetches them with ``bun install --frozen-lockfile`` in a
fixed-output derivation (``.#ai-server.node_modules``) whose hash is ``hash`` in ``ai-server/deps.json``.
That file also records the sha256 of the bun.lock the hash was computed from and the packages it pinned, so
a changed lockfile is noticed without building (``inv doctor``) and ``inv deps.update`` can say what changed.

- ``stale_error``: every ``nix build`` nixfly runs turns a stale hash (Nix's mismatch, or flake.nix's own
  lockfile comparison) into one line naming ``inv deps.update`` instead of Nix's dump.
- ``problems``: for ``inv doctor``: the record is for this bun.lock, and bun.lock matches package.json.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixfly import nixhash
from nixfly.errors import NixflyError

APP = "ai-server"
LOCKFILE = f"{APP}/bun.lock"
MANIFEST = f"{APP}/package.json"
RECORD = f"{APP}/deps.json"
# pname of the fixed-output derivation in flake.nix, and the line its consumer prints when the node_modules
# Nix reused came from another bun.lock.
DRV_NAME = f"{APP}-node_modules"
STALE_MARKER = "nixfly-deps-stale:"
UPDATE_HINT = f"run `inv deps.update`, then commit {RECORD}"
RELOCK_HINT = f"run `bun install` in {APP}/ (inside `nix develop`), then `inv deps.update`"
DEP_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The same text from Nix 2.4 to 2.28 and later (local-derivation-goal.cc, then derivation-check.cc):
#   hash mismatch in fixed-output derivation '<drv>':\n  specified: <SRI>\n     got:    <SRI>
# Lix adds "likely URL: …" first; Nix before 2.4 said "wanted:" and printed nix32 hashes.
_MISMATCH = re.compile(
    r"hash mismatch in fixed-output derivation '(?P<drv>[^']+)':"
    r"(?:\s*likely URL:\s*\S+)?"
    r"\s*(?:specified|wanted):\s*(?P<specified>\S+)"
    r"\s*got:\s*(?P<got>\S+)"
)
_DIGEST_BYTES = {"sha256": 32, "sha512": 64, "sha1": 20}


@dataclass(frozen=True)
class Mismatch:
    drv: str
    specified: str
    got: str

    @property
    def ours(self) -> bool:
        """Whether it is the node_modules derivation (store names are ``<32 chars>-<name>``)."""
        return Path(self.drv).name[33:].startswith(DRV_NAME)


def to_sri(value: str) -> str:
    """``algo-base64`` from what Nix prints: SRI already, or ``algo:`` + nix32, hex or base64."""
    if ":" not in value:
        return value
    algo, digest = value.split(":", 1)
    size = _DIGEST_BYTES.get(algo)
    if size is None:
        return value
    if len(digest) == size * 2 and all(c in "0123456789abcdef" for c in digest):
        raw = bytes.fromhex(digest)
    elif len(digest) == (size * 8 - 1) // 5 + 1 and all(c in nixhash.BASE32 for c in digest):
        raw = nixhash.from_base32(digest, size)
    else:
        raw = base64.b64decode(digest)
    return f"{algo}-{base64.b64encode(raw).decode()}"


def parse_mismatch(stderr: str) -> Mismatch | None:
    """The first fixed-output hash mismatch in ``nix build``'s stderr, hashes as SRI."""
    match = _MISMATCH.search(_ANSI.sub("", stderr))
    if not match:
        return None
    return Mismatch(match["drv"], to_sri(match["specified"]), to_sri(match["got"]))


def stale_error(stderr: str) -> NixflyError | None:
    """One actionable line when a failed build's cause is a stale ai-server/deps.json, else None."""
    if STALE_MARKER in stderr:
        return NixflyError(
            f"{APP}'s npm dependencies are out of date: {LOCKFILE} changed since {RECORD} was written",
            UPDATE_HINT,
        )
    mismatch = parse_mismatch(stderr)
    if mismatch and mismatch.ours:
        return NixflyError(
            f"{APP}'s npm dependencies are out of date: {RECORD} has {mismatch.specified}, "
            f"but {LOCKFILE} fetches {mismatch.got}",
            UPDATE_HINT,
        )
    return None


# --- bun.lock, package.json and the record -----------------------------------------------------------------
def _strip_trailing_commas(text: str) -> str:
    """bun.lock is JSON with trailing commas; drop each comma that only precedes a ``}`` or ``]``."""
    out: list[str] = []
    in_string = escaped = False
    for i, char in enumerate(text):
        if in_string:
            escaped = not escaped and char == "\\"
            in_string = escaped or char != '"'
        elif char == '"':
            in_string = True
        elif char == ",":
            rest = text[i + 1 :].lstrip()
            if rest[:1] in ("}", "]"):
                continue
        out.append(char)
    return "".join(out)


def load_lockfile(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_strip_trailing_commas(path.read_text()))
    except FileNotFoundError:
        raise NixflyError(
            f"{LOCKFILE} is missing", f"run `bun install` in {APP}/ (inside `nix develop`) to write it"
        ) from None
    except json.JSONDecodeError as exc:
        raise NixflyError(f"{LOCKFILE} cannot be parsed: {exc}", "restore it from git") from None
    if not isinstance(data, dict):
        raise NixflyError(f"{LOCKFILE} is not a bun text lockfile", "restore it from git")
    return data


def locked_packages(lock: dict[str, Any]) -> dict[str, str]:
    """``{install path: version}`` of every package bun.lock pins (workspaces and links included)."""
    found: dict[str, str] = {}
    for key, entry in (lock.get("packages") or {}).items():
        if isinstance(entry, list) and entry and isinstance(entry[0], str):
            found[key] = entry[0].rsplit("@", 1)[-1] if "@" in entry[0][1:] else entry[0]
    return dict(sorted(found.items()))


def manifest_mismatch(root: Path, lock: dict[str, Any]) -> str:
    """How package.json's dependency lists differ from what bun.lock recorded for them, or ""."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return f"{MANIFEST} cannot be read: {exc}"
    recorded = (lock.get("workspaces") or {}).get("") or {}
    differing = [field for field in DEP_FIELDS if (manifest.get(field) or {}) != (recorded.get(field) or {})]
    if not differing:
        return ""
    return f"{LOCKFILE} does not match the {', '.join(differing)} of {MANIFEST}"


def lockfile_sha256(root: Path) -> str:
    return hashlib.sha256((root / LOCKFILE).read_bytes()).hexdigest()


def read_record(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def record_text(hash_: str, lock_sha256: str, packages: dict[str, str]) -> str:
    record = {
        "//": (
            "Written by `inv deps.update`: the Nix hash of ai-server's node_modules (flake.nix, "
            "aiServerNodeModules) and the bun.lock it was computed from."
        ),
        "hash": hash_,
        "lockfile": {"sha256": lock_sha256, "packages": packages},
    }
    return json.dumps(record, indent=2) + "\n"


def problems(root: Path) -> list[str]:
    """What ``inv doctor`` reports about the npm dependencies, without building anything."""
    if not (root / LOCKFILE).exists():
        return [f"{LOCKFILE} is missing: run `bun install` in {APP}/ (inside `nix develop`)"]
    try:
        lock = load_lockfile(root / LOCKFILE)
    except NixflyError as exc:
        return [str(exc)]
    found = []
    mismatch = manifest_mismatch(root, lock)
    if mismatch:
        found.append(f"{mismatch}: {RELOCK_HINT}")
    record = read_record(root)
    if not record.get("hash"):
        found.append(f"{RECORD} is missing or has no hash: {UPDATE_HINT}")
    elif (record.get("lockfile") or {}).get("sha256") != lockfile_sha256(root):
        found.append(f"{LOCKFILE} changed since {RECORD} was written: {UPDATE_HINT}")
    return found
