"""Secrets for flyctl: its import format, change detection, and staging.

``flyctl secrets import`` reads NAME=VALUE lines from stdin with a parser of its own (flyctl.md §3): an
unquoted ``#`` starts a comment, one pair of surrounding quotes is removed, ``\"\"\"`` opens a value
ending at the first line that ends in ``\"\"\"``, leading spaces are trimmed, and Go's line scanner gives up
silently on a line of 64 KiB or more. So values are never piped as a dotenv file: each one is checked and
written in the one form that parser gives back unchanged, and values it cannot carry are refused before
anything is sent.

Change detection keeps local fingerprints (HMAC-SHA256 with a per-checkout key, so the file reveals nothing
about low-entropy values) instead of relying on Fly's digest, whose algorithm is not documented.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets as pysecrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nixfly.config import validate_env_name
from nixfly.errors import NixflyError
from nixfly.files import write_atomic

# Go's bufio.Scanner stops at a token of 64 KiB (MaxScanTokenSize); the line without its newline must be
# shorter than that.
MAX_LINE_BYTES = 64 * 1024 - 1
TRIPLE = '"""'


def _refuse(name: str, why: str) -> NixflyError:
    return NixflyError(
        f"secret {name} cannot be sent through `flyctl secrets import`: {why}",
        "change the value (nothing was sent)",
    )


def encode(name: str, value: str) -> str:
    """One NAME=VALUE entry that flyctl's import parser reads back as exactly ``value``."""
    validate_env_name(name)
    if "\0" in value:
        raise _refuse(name, "it contains a NUL byte")
    if "\r" in value:
        # Go's line scanner drops a CR before each newline, and quoting does not protect it.
        raise _refuse(name, "it contains a carriage return")
    if "\n" not in value:
        # Surrounding double quotes keep '#', leading spaces and inner quotes; a value starting with two
        # quotes would read as the opening of a triple-quoted block, and a one-line value cannot use one.
        quoted = f'"{value}"'
        if quoted.startswith(TRIPLE):
            raise _refuse(name, 'a one-line value may not start with "" or be a lone "')
        entry = f"{name}={quoted}"
    else:
        lines = value.split("\n")
        # The block ends at the first line ending in """: only the last line may.
        if any(line.endswith(TRIPLE) for line in lines[1:-1]):
            raise _refuse(name, 'an inner line ends with """')
        entry = f"{name}={TRIPLE}{value}{TRIPLE}"
    if any(len(line.encode()) > MAX_LINE_BYTES for line in entry.split("\n")):
        raise _refuse(name, "a line is 64 KiB or longer (flyctl would silently stop reading there)")
    return entry


def encode_all(values: Mapping[str, str]) -> str:
    """The whole stdin payload; checks every value before returning, so a refusal sends nothing."""
    return "".join(encode(name, value) + "\n" for name, value in values.items())


@dataclass
class Fingerprints:
    """What nixfly last pushed to one app, as keyed digests: ``<state_dir>/secrets-<app>.json``."""

    state_dir: Path
    app: str

    @property
    def path(self) -> Path:
        return self.state_dir / f"secrets-{self.app}.json"

    def _key(self, create: bool) -> bytes:
        key_file = self.state_dir / "fingerprint.key"
        if key_file.exists():
            return bytes.fromhex(key_file.read_text().strip())
        key = pysecrets.token_bytes(32)
        if create:
            write_atomic(key_file, key.hex() + "\n", mode=0o600)
        return key

    def digest(self, name: str, value: str, *, create_key: bool = False) -> str:
        key = self._key(create_key)
        return hmac.new(key, f"{self.app}\0{name}\0{value}".encode(), hashlib.sha256).hexdigest()

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def changed(self, values: Mapping[str, str], remote_names: set[str]) -> dict[str, str]:
        """Values whose fingerprint differs, or that the app no longer has (someone unset them)."""
        known = self.load()
        if not (self.state_dir / "fingerprint.key").exists():
            return dict(values)
        return {
            name: value
            for name, value in values.items()
            if name not in remote_names or known.get(name) != self.digest(name, value)
        }

    def record(self, pushed: Mapping[str, str]) -> None:
        data = self.load()
        data.update({name: self.digest(name, value, create_key=True) for name, value in pushed.items()})
        os.makedirs(self.state_dir, exist_ok=True)
        write_atomic(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode=0o600)
