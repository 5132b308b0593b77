"""Secrets for flyctl: its import format, change detection, and staging.

``flyctl secrets import`` reads NAME=VALUE lines from stdin with a parser of its own (``parseSecrets`` in
flyctl's ``internal/command/secrets/parser.go``), and exits 0 whatever it made of them. It has no escapes;
each value may be written bare, ``"…"``, ``'…'`` or ``\"\"\"…\"\"\"`` (one line or several), and which form
survives which value depends on the release: the parser changed five times (``PARSERS``). So nixfly reads the
flyctl version once per run and, per value, picks a form that THAT release's parser turns back into exactly
that value (``reads_back`` is a model of one entry through it). What no form of that release can carry is
refused by name before anything is sent, naming the release and the first later one that can carry it.

In the newest parser (v0.4.14+) every one-line value has a form; what it refuses is a multi-line value (see
``_newest_limits``), a line of 64 KiB or more, a NUL byte, or text that is not UTF-8.

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

Release = tuple[int, int, int]


@dataclass(frozen=True)
class Parser:
    """One version of ``parseSecrets``, by what it does to an entry's first line (``git log --follow -p --
    internal/command/secrets/parser.go``). Every version splits at the first ``=``, drops one ``\\r`` at the
    end of each line (bufio.ScanLines), opens a multi-line value at a leading ``\"\"\"`` and ends it at the
    first later line ending in ``\"\"\"``."""

    since: Release
    commit: str
    change: str  # what this release changed, for messages
    strips_double: bool  # `"…"` loses its quotes
    cuts_hash: bool  # TrimLeft(value, " "); cut at the first "#" after an even number of `"`, TrimRight " "
    one_line_triple: bool  # `"""…"""` on one line (6+ bytes) is a value
    strips_single: bool  # `'…'` loses its quotes

    @property
    def label(self) -> str:
        return "v" + ".".join(map(str, self.since))


PARSERS = (
    Parser(
        (0, 0, 475), "28d2a3041", "parser.go: NAME=VALUE lines, values verbatim", False, False, False, False
    ),
    Parser((0, 1, 41), "19e91adbd", 'strips a pair of "…"', True, False, False, False),
    Parser((0, 3, 100), "066194c1c", "cuts at # and trims spaces", True, True, False, False),
    Parser((0, 3, 226), "3869006c1", 'reads a one-line """…"""', True, True, True, False),
    Parser((0, 4, 14), "0f76e62ff", "strips a pair of '…'", True, True, True, True),
)


def parser_for(release: Release | None) -> Parser:
    """The parser of ``release``; an unreadable version (None), or one older than parser.go, is the oldest."""
    if release is None:
        return PARSERS[0]
    return [p for p in PARSERS if p.since <= release][-1] if release >= PARSERS[0].since else PARSERS[0]


def _drop_cr(line: str) -> str:
    return line[:-1] if line.endswith("\r") else line


def reads_back(parser: Parser, form: str) -> str | None:
    """What ``parser`` stores for ``NAME=form`` (sent as its own lines, then a newline), or None when it
    stores something other than one value read from exactly these lines, or panics (``value[1:0]`` on a
    lone quote)."""
    lines = [_drop_cr(line) for line in form.split("\n")]
    value = lines[0]
    if parser.cuts_hash:
        value = value.lstrip(" ")
        before, hash_sign, _ = value.partition("#")
        if hash_sign and before.count('"') % 2 == 0:
            value = before.rstrip(" ")
    if parser.one_line_triple and value.startswith(TRIPLE) and value.endswith(TRIPLE) and len(value) >= 6:
        return value[3:-3] if len(lines) == 1 else None
    if value.startswith(TRIPLE):
        read = [value[3:]]
        for number, line in enumerate(lines[1:], 1):
            if line.endswith(TRIPLE):
                read.append(line[:-3])
                return "\n".join(read) if number == len(lines) - 1 else None
            read.append(line)
        return None  # never closed: the value is never stored
    if len(lines) > 1:
        return None
    for quote, strips in (('"', parser.strips_double), ("'", parser.strips_single)):
        if strips and value.startswith(quote) and value.endswith(quote):
            return value[1:-1] if len(value) > 1 else None
    return value


def _form(parser: Parser, value: str) -> str | None:
    """The first form ``parser`` reads back as ``value``: "…" and bare first (they read alike in most
    releases), then '…' and \"\"\"…\"\"\"; a value with a newline has only the last."""
    forms = [f"{TRIPLE}{value}{TRIPLE}"]
    if "\n" not in value:
        forms = [f'"{value}"', value, f"'{value}'", *forms]
    return next((form for form in forms if reads_back(parser, form) == value), None)


def _cut(sent: str) -> bool:
    """Whether v0.3.100+ cuts ``sent`` (the value as written on the line, quotes included) at its first
    ``#``: it does when the part before holds an even number of ``"``."""
    before, hash_sign, _ = sent.partition("#")
    return bool(hash_sign) and before.count('"') % 2 == 0


def _newest_limits(value: str) -> tuple[str, str]:
    """Why the newest parser cannot carry a multi-line ``value`` through ``\"\"\"first`` … ``last\"\"\"``,
    its only form with a newline, and what would fix it."""
    lines = value.split("\n")
    if _cut(TRIPLE + lines[0]):
        return (
            'its first line holds a "#" that flyctl would cut the value at (an even number of double quotes, '
            'counting the opening """, come before it)',
            "keep '#' off the first line (for JSON, open it with a line holding only the opening brace, or "
            "send it compact on one line)",
        )
    if lines[0].endswith(TRIPLE):
        return (
            'its first line ends with """, so flyctl would read that line as the whole value',
            'start the value with a line that does not end in """',
        )
    for number, line in enumerate(lines[:-1], 1):
        if line.endswith("\r"):
            return (
                f"line {number} of it ends with a carriage return, which flyctl's line reader drops",
                "convert its line endings to LF (a Windows CRLF file?)",
            )
        if line.endswith(TRIPLE):
            return (
                f'line {number} of it ends with """, where flyctl would end the value',
                'change that line so it does not end in """',
            )
    return "flyctl's import parser reads every form of it back changed", "change the value"


def _settable_from_stdin(value: str) -> bool:
    """``flyctl secrets set NAME=-`` stores exactly ``value`` (set.go + helpers.ReadStdin: at most 64 KiB of
    stdin, then strings.TrimSpace; no other parsing)."""
    return value == value.strip(GO_SPACE) and len(value.encode()) <= MAX_SET_STDIN_BYTES


def _refuse(name: str, value: str, flyctl: str, why: str, fix: str) -> NixflyError:
    hint = f"nothing was sent; {fix}"
    if _settable_from_stdin(value):
        hint += (
            f", or stage this one by hand with `flyctl secrets set --stage {name}=- < FILE` (set reads stdin "
            f"unchanged) and take {name} out of .env, the environment and .env.fly"
        )
    return NixflyError(
        f"secret {name} cannot be sent through `flyctl secrets import` of {flyctl}: {why}", hint
    )


def describe(release: Release | None) -> str:
    """The flyctl release as messages name it."""
    if release is None:
        return f"flyctl of unknown version (read as the oldest parser, {PARSERS[0].label})"
    return "flyctl v" + ".".join(map(str, release))


def encode(name: str, value: str, release: Release | None) -> str:
    """One NAME=VALUE entry (one or more lines, no final newline) that the import parser of flyctl ``release``
    (None: unreadable, so the oldest) reads back as exactly ``value``; ``NixflyError`` naming ``name`` (never
    quoting ``value``), the release and the first later one that can carry it, when no form can."""
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
    parser = parser_for(release)
    form = _form(parser, value)
    if form is None:
        later = next((p for p in PARSERS if p.since > parser.since and _form(p, value) is not None), None)
        if later is None:
            raise _refuse(name, value, describe(release), *_newest_limits(value))
        raise _refuse(
            name,
            value,
            describe(release),
            f"that release's parser reads every form of it back changed; flyctl {later.label} is the first "
            f"release that can carry it ({later.change}, commit {later.commit})",
            f"upgrade flyctl to {later.label} or later (`nix develop` gives a new enough one)",
        )
    entry = f"{name}={form}"
    for number, line in enumerate(entry.split("\n"), 1):
        if len(line.encode()) > MAX_LINE_BYTES:
            where = "it is" if "\n" not in value else f"line {number} of it is"
            raise _refuse(
                name,
                value,
                describe(release),
                f"{where} 64 KiB or longer once written, and flyctl silently stops reading at such a line",
                "shorten the value",
            )
    return entry


def encode_all(values: Mapping[str, str], release: Release | None) -> str:
    """The whole stdin payload for flyctl ``release``; checks every value before returning, so a refusal sends
    nothing."""
    return "".join(encode(name, value, release) + "\n" for name, value in values.items())


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
