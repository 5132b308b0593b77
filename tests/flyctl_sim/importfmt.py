"""The ``fly secrets import`` stdin format, parsed exactly as flyctl parses it.

Follows ``internal/command/secrets/parser.go`` (``parseSecrets``) plus the reference's documented extras
(single quotes, unquoted ``#`` comments). nixfly's property tests depend on every rule here:

* lines are split like Go's ``bufio.ScanLines``: a line ends at ``\\n`` and one trailing ``\\r`` is dropped;
  a final line without ``\\n`` still counts; no empty token follows a trailing ``\\n``;
* Go's ``bufio.Scanner`` refuses a token of 64 KiB or more (``MaxScanTokenSize``): a line (its UTF-8 bytes,
  ``\\r`` included, ``\\n`` excluded) of 65536 bytes or more makes ``Scan`` fail, and flyctl never checks
  ``scanner.Err()`` -- so parsing silently ENDS there and the pairs read so far are returned;
* outside a multi-line value: lines starting with ``#`` and whitespace-only lines are skipped; the rest split
  at the first ``=`` (none -> error); the key is whitespace-trimmed, the value left-trimmed of spaces only;
* a value starting with ``\"\"\"`` opens a multi-line value: the rest of that line plus ``\\n``, then each
  following line plus ``\\n`` until a line ENDING with ``\"\"\"`` (appended without it) closes it. A value
  still open at the end of input is dropped, as flyctl drops it;
* otherwise a value that starts and ends with ``"`` (length >= 2) loses that one pair; likewise ``'...'``;
* otherwise (unquoted) the first ``#`` starts a comment: the value is cut there and right-trimmed of spaces.
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_TOKEN_BYTES = 64 * 1024  # bufio.MaxScanTokenSize
TRIPLE = '"""'
# Go's unicode.IsSpace (what strings.TrimSpace trims). Python's str.strip() also trims U+001C..U+001F.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def go_trim_space(text: str) -> str:
    """Go's ``strings.TrimSpace``."""
    return text.strip(GO_SPACE)


def utf8_len(text: str) -> int:
    """Byte length of ``text`` as flyctl saw it (stdin bytes decoded with ``surrogateescape`` round-trip)."""
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogatepass"))


def scan_lines(text: str) -> Iterator[str]:
    """Go's ``bufio.Scanner`` with ``ScanLines``, including its silent stop at a too-long line."""
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos)
        raw = text[pos:] if end < 0 else text[pos:end]
        if utf8_len(raw) >= MAX_TOKEN_BYTES:
            return  # bufio.ErrTooLong: Scan() returns false; flyctl ignores scanner.Err()
        yield raw[:-1] if raw.endswith("\r") else raw
        if end < 0:
            return
        pos = end + 1


def _strip_quotes(value: str) -> str:
    for quote in ('"', "'"):
        if len(value) >= 2 and value.startswith(quote) and value.endswith(quote):
            return value[1:-1]
    hash_at = value.find("#")
    if hash_at >= 0:
        return value[:hash_at].rstrip(" ")
    return value


def parse_import(text: str) -> dict[str, str]:
    """Parse ``NAME=VALUE`` lines; raises ValueError with flyctl's message for a line without ``=``."""
    secrets: dict[str, str] = {}
    multiline_key: str | None = None
    multiline_value: list[str] = []
    for line in scan_lines(text):
        if multiline_key is not None:
            if line.endswith(TRIPLE):
                multiline_value.append(line[: -len(TRIPLE)])
                secrets[multiline_key] = "".join(multiline_value)
                multiline_key, multiline_value = None, []
            else:
                multiline_value.append(line + "\n")
            continue
        if line.startswith("#") or not go_trim_space(line):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"Secrets must be provided as NAME=VALUE pairs ({line} is invalid)")
        key = go_trim_space(key)
        value = value.lstrip(" ")
        if value.startswith(TRIPLE):
            multiline_key = key
            multiline_value = [value[len(TRIPLE) :] + "\n"]
        else:
            secrets[key] = _strip_quotes(value)
    return secrets
