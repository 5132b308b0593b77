"""Secrets for flyctl: its import format, change detection, and staging.

``flyctl secrets import`` reads NAME=VALUE lines from stdin with a parser of its own (``parseSecrets`` in
flyctl's ``internal/command/secrets/parser.go``), and exits 0 whatever it made of them. It has
no escapes; instead each value may be written bare, ``"…"``, ``'…'`` or ``\"\"\"…\"\"\"`` (one line or
several), and each form survives different values:

* it cuts a value at its first ``#`` when the part before holds an EVEN number of ``"``, counted on the line
  as sent, opening quote included (one for ``"…"``, three for ``\"\"\"…``, none for bare and ``'…'``);
* bare loses leading spaces and a trailing ``\\r``, and must not look quoted;
* ``"…"`` must not start with ``\"\"\"`` (a value starting with ``""``, or a lone ``"``);
* multi-line is only ``\"\"\"…\"\"\"``: its first line gets the ``#`` cut, the first later line ending in
  ``\"\"\"`` ends it, and Go's line scanner drops a ``\\r`` at the end of every line;
* a line of 64 KiB or more silently ends the input.

So ``encode`` picks, per value, a form the parser turns back into exactly that value, and refuses by name the
few values no form can carry, before anything is sent. Every one-line value has a form; what can be refused
is a multi-line value (see ``_multi_line``), a line of 64 KiB or more, a NUL byte, or text that is not UTF-8.

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

# Go's bufio.Scanner holds at most 64 KiB (MaxScanTokenSize), newline included: a line sent to flyctl, without
# its newline, must be at most this many UTF-8 bytes.
MAX_LINE_BYTES = 64 * 1024 - 1
# `flyctl secrets set NAME=-` reads at most this many bytes of stdin (set.go: helpers.ReadStdin(64 * 1024)).
MAX_SET_STDIN_BYTES = 64 * 1024
TRIPLE = '"""'
# What Go's strings.TrimSpace removes (unicode.IsSpace); `secrets set NAME=-` trims the value with it.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


class _Refused(Exception):
    """No form carries the value: ``why`` and what would fix it, never the value itself."""

    def __init__(self, why: str, fix: str) -> None:
        super().__init__(why)
        self.why = why
        self.fix = fix


def _cut(sent: str) -> bool:
    """Whether parseSecrets cuts ``sent`` (the value as written on the line, quotes included) at its first
    ``#``: it does when the part before holds an even number of ``"``."""
    before, hash_sign, _ = sent.partition("#")
    return bool(hash_sign) and before.count('"') % 2 == 0


def _bare_ok(value: str) -> bool:
    """``NAME=value`` reads back as ``value``: nothing trimmed, cut, or taken for quotes."""
    return not (
        value.startswith(" ")  # TrimLeft(value, " ")
        or value.endswith("\r")  # ScanLines' dropCR
        or _cut(value)
        or value.startswith(TRIPLE)
        or (value[:1] in ('"', "'") and value.endswith(value[:1]))  # a pair would be removed (or panic)
    )


def _one_line(value: str) -> str:
    """The form of a value without a newline. One always exists: with a ``#`` and p ``"`` before it, ``'…'``
    is not cut when p is odd, ``\"\"\"…\"\"\"`` when p is even (3 + p odd), and both keep everything else.

    Preference: the forms every flyctl since v0.3.100 reads alike first; ``'…'`` is stripped only since
    v0.4.14 and one-line ``\"\"\"…\"\"\"`` is understood only since v0.3.226, so they come last.
    """
    double = f'"{value}"'
    if not double.startswith(TRIPLE) and not _cut(double):  # a value starting with "", or a lone ", would
        return double  # open a triple-quoted value
    if _bare_ok(value):
        return value
    if not _cut(f"'{value}"):
        return f"'{value}'"
    return f"{TRIPLE}{value}{TRIPLE}"  # not cut: the p is even here, so 3 + p is odd


def _multi_line(value: str) -> str:
    """``\"\"\"first`` … ``last\"\"\"``: the only form with a newline, so its limits are the refusals.

    Not used: a first line ending in ``\\r`` that holds no ``#`` and an odd number of ``"`` could be sent as
    ``\"\"\"first#`` (the cut would remove the ``#`` and keep the ``\\r``). nixfly refuses a CR in its sources
    anyway (bundle), and that form reads differently before flyctl v0.3.100, so such values are refused too.
    """
    lines = value.split("\n")
    first = lines[0]
    if _cut(TRIPLE + first):
        raise _Refused(
            'its first line holds a "#" that flyctl would cut the value at (an even number of double quotes, '
            'counting the opening """, come before it)',
            "keep '#' off the first line (for JSON, open it with a line holding only the opening brace, or "
            "send it compact on one line)",
        )
    if first.endswith(TRIPLE):
        raise _Refused(
            'its first line ends with """, so flyctl would read that line as the whole value',
            'start the value with a line that does not end in """',
        )
    for number, line in enumerate(lines[:-1], 1):
        if line.endswith("\r"):
            raise _Refused(
                f"line {number} of it ends with a carriage return, which flyctl's line reader drops",
                "convert its line endings to LF (a Windows CRLF file?)",
            )
        if number > 1 and line.endswith(TRIPLE):
            raise _Refused(
                f'line {number} of it ends with """, where flyctl would end the value',
                'change that line so it does not end in """',
            )
    return f"{TRIPLE}{value}{TRIPLE}"


def _settable_from_stdin(value: str) -> bool:
    """``flyctl secrets set NAME=-`` stores exactly ``value`` (set.go + helpers.ReadStdin: at most 64 KiB of
    stdin, then strings.TrimSpace; no other parsing)."""
    return value == value.strip(GO_SPACE) and len(value.encode()) <= MAX_SET_STDIN_BYTES


def _refuse(name: str, value: str, why: str, fix: str) -> NixflyError:
    hint = f"nothing was sent; {fix}"
    if _settable_from_stdin(value):
        hint += (
            f", or stage this one by hand with `flyctl secrets set --stage {name}=- < FILE` (set reads stdin "
            f"unchanged) and take {name} out of .env, the environment and .env.fly"
        )
    return NixflyError(f"secret {name} cannot be sent through `flyctl secrets import`: {why}", hint)


def encode(name: str, value: str) -> str:
    """One NAME=VALUE entry (one or more lines, no final newline) that flyctl's import parser reads back as
    exactly ``value``; ``NixflyError`` naming ``name`` (never quoting ``value``) when no form can carry it."""
    validate_env_name(name)
    if "\0" in value:
        raise NixflyError(
            f"secret {name} holds a NUL byte, which no environment variable can carry",
            "nothing was sent; remove the NUL from the value",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NixflyError(
            f"secret {name} is not valid UTF-8 text (undecodable bytes in the environment or a file?)",
            "nothing was sent; fix the source so it holds UTF-8 text",
        ) from None
    try:
        form = _one_line(value) if "\n" not in value else _multi_line(value)
    except _Refused as refused:
        raise _refuse(name, value, refused.why, refused.fix) from None
    entry = f"{name}={form}"
    for number, line in enumerate(entry.split("\n"), 1):
        if len(line.encode()) > MAX_LINE_BYTES:
            where = "it is" if "\n" not in value else f"line {number} of it is"
            raise _refuse(
                name,
                value,
                f"{where} 64 KiB or longer once written, and flyctl silently stops reading at such a line",
                "shorten the value",
            )
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
