"""The ``fly secrets import`` stdin format, parsed exactly as flyctl parses it.

A line-for-line port of ``parseSecrets`` in flyctl's ``internal/command/secrets/parser.go`` (v0.4.87+6,
commit ad0172fac; the rules last changed in v0.4.14, "Strip single quotes"), with the pieces of Go it leans
on ported too: ``bufio.Scanner`` + ``bufio.ScanLines``, ``strings.TrimSpace``/``TrimLeft``/``TrimRight``/
``Cut``/``CutSuffix``, and the runtime panic of an out-of-range slice. nixfly's property tests check the
encoder against this module, so every rule here cites the Go line it mirrors.

Text, not bytes: the simulator decodes stdin with ``surrogateescape``, so every byte flyctl sees is one
character here (an invalid byte is one lone surrogate) and the ASCII needles (``=``, ``#``, ``"``, ``'``,
space) match at the same places as in Go's byte strings. Lengths are compared in UTF-8 bytes where Go does.

Every earlier version of the parser is ported too, chosen by the release the simulator plays
(``parse_import(text, version)``); ``git log --follow -p -- internal/command/secrets/parser.go``:

* v0.0.475 (28d2a3041, the file is born; of v0.0.474 only a prerelease has it): ``SplitN(line, "=", 2)``,
  the value verbatim, ``\"\"\"`` opens a multi-line value;
* v0.1.41 (19e91adbd): a value in ``"…"`` loses its quotes;
* v0.3.100 (066194c1c): the key is TrimSpace'd, the value TrimLeft'd of spaces and cut at its first ``#``
  when an even number of ``"`` come before it;
* v0.3.226 (3869006c1): a one-line ``\"\"\"…\"\"\"`` is a value, not the start of a multi-line one;
* v0.4.14 (0f76e62ff): a value in ``'…'`` loses its quotes.

v0.4.22 (30a1c2c11) only swapped HasSuffix+TrimSuffix for CutSuffix: the same behaviour. flyctl before
v0.0.475 parsed in ``import.go``; the simulator plays those as v0.0.475.
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_TOKEN_BYTES = 64 * 1024  # bufio.MaxScanTokenSize: the default Scanner buffer never grows past it
ERR_TOO_LONG = "bufio.Scanner: token too long"  # bufio.ErrTooLong
TRIPLE = '"""'
INVALID_PAIR = "Secrets must be provided as NAME=VALUE pairs ({line} is invalid)"
# Go's unicode.IsSpace (what strings.TrimSpace trims). Python's str.strip() also trims U+001C..U+001F.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


class GoPanic(Exception):
    """A Go runtime panic in the parser; its text is the panic value as Go prints it.

    flyctl's ``main.go`` (``run``) recovers panics in release builds (``buildinfo.IsDev()`` is false when
    built with the ``production`` tag, as goreleaser does): ``sentry.Recover`` prints ``Oops, something went
    wrong! Could you try that again?``, a blank line, the panic value and the stack to STDOUT, and the exit
    code is 3. A development build does not recover: Go prints ``panic: <value>`` and the goroutine stack to
    stderr and exits 2.
    """


PANIC_EXIT_CODE = 3  # main.go: run() sets exitCode = 3 after recover()


def recovered_panic_output(panic: GoPanic) -> str:
    """What a release flyctl prints on STDOUT for a recovered panic (``internal/sentry/sentry.go``,
    ``printError``): aurora.Red's ANSI colours, a blank line, the panic value, ``debug.Stack()``."""
    return (
        "\x1b[31mOops, something went wrong! Could you try that again?\x1b[0m\n"
        "\n"
        f"{panic}\n"
        "goroutine 1 [running]:\n"
        "runtime/debug.Stack()\n"
        "github.com/superfly/flyctl/internal/command/secrets.parseSecrets(...)\n"
        "\tgithub.com/superfly/flyctl/internal/command/secrets/parser.go\n"
    )


# --- Go's strings package ---------------------------------------------------------------------------------


def go_trim_space(text: str) -> str:
    """``strings.TrimSpace``: unicode.IsSpace on both ends."""
    return text.strip(GO_SPACE)


def go_trim_left(text: str, cutset: str) -> str:
    """``strings.TrimLeft``: every leading character in ``cutset`` (a set, not a prefix)."""
    return text.lstrip(cutset)


def go_trim_right(text: str, cutset: str) -> str:
    """``strings.TrimRight``."""
    return text.rstrip(cutset)


def go_cut(text: str, sep: str) -> tuple[str, str, bool]:
    """``strings.Cut``: around the FIRST ``sep``; not found → (text, "", False)."""
    before, found, after = text.partition(sep)
    return before, after, bool(found)


def go_cut_suffix(text: str, suffix: str) -> tuple[str, bool]:
    """``strings.CutSuffix``: removes ONE trailing ``suffix``."""
    if text.endswith(suffix):
        return text[: len(text) - len(suffix)], True
    return text, False


def go_slice(text: str, low: int, high: int) -> str:
    """``text[low:high]``, panicking where Go does (Python would quietly return "")."""
    if not 0 <= low <= high <= len(text):
        raise GoPanic(f"runtime error: slice bounds out of range [{low}:{high}]")
    return text[low:high]


# --- Go's bufio.Scanner with bufio.ScanLines ---------------------------------------------------------------


def utf8_len(text: str) -> int:
    """Byte length of ``text`` as flyctl saw it (stdin bytes decoded with ``surrogateescape`` round-trip)."""
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogatepass"))


class Scanner:
    """``bufio.NewScanner(r)`` with its default split function ``ScanLines`` and buffer.

    * ``ScanLines``: a token ends at ``\\n``; ``dropCR`` removes ONE ``\\r`` before it (and at the end of
      a final line without ``\\n``); a final line without ``\\n`` is a token; nothing follows a trailing
      ``\\n``.
    * The buffer starts at 4 KiB and doubles up to ``MaxScanTokenSize`` (64 KiB). A token must fit in it
      WITH its ``\\n``: a line of 65536 bytes or more (``\\r`` counted, ``\\n`` not) fills the buffer
      without a newline, so ``Scan`` returns false and ``Err`` is ``ErrTooLong`` -- also for a last line
      that EOF would have ended.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._token = ""
        self._err: str | None = None

    def scan(self) -> bool:
        if self._err is not None or self._pos >= len(self._text):
            return False  # ScanLines(atEOF, len(data) == 0) → no token
        end = self._text.find("\n", self._pos)
        raw = self._text[self._pos :] if end < 0 else self._text[self._pos : end]
        if utf8_len(raw) >= MAX_TOKEN_BYTES:
            self._err = ERR_TOO_LONG
            return False
        self._token = raw[:-1] if raw.endswith("\r") else raw  # dropCR
        self._pos = len(self._text) if end < 0 else end + 1
        return True

    def text(self) -> str:
        return self._token

    def err(self) -> str | None:
        return self._err


def scan_lines(text: str) -> Iterator[str]:
    """Every token ``Scanner`` yields, stopping silently where ``Scan`` fails."""
    scanner = Scanner(text)
    while scanner.scan():
        yield scanner.text()


# --- parser.go: parseSecrets ------------------------------------------------------------------------------

_SINGLELINE, _MULTILINE = 0, 1  # parserStateSingleline, parserStateMultiline
LATEST = (0, 4, 87)
STRIPS_DOUBLE_SINCE = (0, 1, 41)  # 19e91adbd "Remove surrounding double quotes from env variable strings"
CUTS_HASH_SINCE = (0, 3, 100)  # 066194c1c "Fix comments and spaces for parsing env secrets" (#4294)
ONE_LINE_TRIPLE_SINCE = (0, 3, 226)  # 3869006c1 "Fix fly secrets multiline" (#4688)
STRIPS_SINGLE_SINCE = (0, 4, 14)  # 0f76e62ff "Strip single quotes from secrets when parsing." (#4744)


def parse_import(text: str, version: tuple[int, ...] = LATEST) -> dict[str, str]:
    """flyctl's ``parseSecrets(os.Stdin)`` as the release ``version`` has it.

    Raises ``ValueError`` with flyctl's message for a line without ``=``, and ``GoPanic`` where flyctl
    panics (a value that is a lone ``"`` or ``'``). Never reports a scanner error: parseSecrets does not call
    ``scanner.Err()``, so a too-long line silently ends the input and the pairs read so far are returned.
    """
    secrets: dict[str, str] = {}
    scanner = Scanner(text)  # parser.go: bufio.NewScanner(reader)
    state = _SINGLELINE
    parsed_key = ""
    parsed_val: list[str] = []  # parsedVal strings.Builder
    while scanner.scan():  # parser.go: for scanner.Scan() -- scanner.Err() is never checked
        line = scanner.text()
        if state == _SINGLELINE:
            # parser.go: strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" → continue
            # (the raw line: an indented "#" is NOT a comment, and whitespace-only lines are skipped)
            if line.startswith("#") or go_trim_space(line) == "":
                continue
            # parser.go: key, value, ok := strings.Cut(line, "=") → error when there is no "="
            # parser.go: key, value, ok := strings.Cut(line, "=") → error when there is no "=" (v0.0.475 to
            #   v0.3.99: parts := strings.SplitN(line, "=", 2); len(parts) != 2 → the same error: identical)
            key, value, ok = go_cut(line, "=")
            if not ok:
                raise ValueError(INVALID_PAIR.format(line=line))
            if version >= CUTS_HASH_SINCE:
                key = go_trim_space(key)  # parser.go: key = strings.TrimSpace(key)
                value = go_trim_left(
                    value, " "
                )  # parser.go: value = strings.TrimLeft(value, " ") -- spaces only
                # parser.go: l, _, ok := strings.Cut(value, "#"); if ok && strings.Count(l, `"`)%2 == 0
                #   { value = strings.TrimRight(l, " ") } -- before any quote is removed, so an opening quote
                #   counts, and a value starting with \"\"\" is cut too
                before_hash, _, ok = go_cut(value, "#")
                if ok and before_hash.count('"') % 2 == 0:
                    value = go_trim_right(before_hash, " ")
            # parser.go (v0.3.226+): HasPrefix(value, `"""`) && HasSuffix(value, `"""`) && len(value) >= 6
            #   → the middle (len is in bytes in Go; the same here: a shorter string with that prefix and
            #   suffix is 3 to 5 ASCII quotes)
            if (
                version >= ONE_LINE_TRIPLE_SINCE
                and value.startswith(TRIPLE)
                and value.endswith(TRIPLE)
                and len(value) >= 6
            ):
                secrets[key] = value[3 : len(value) - 3]
            # parser.go: else if HasPrefix(value, `"""`) → multi-line; its first line is
            #   TrimPrefix(value, `"""`) + "\n" (after the "#" cut above, from v0.3.100)
            elif value.startswith(TRIPLE):
                state = _MULTILINE
                parsed_key = key
                parsed_val = [value[len(TRIPLE) :], "\n"]
            else:
                # parser.go: HasPrefix(value, `"`) && HasSuffix(value, `"`) → value[1 : len(value)-1]
                #   (v0.1.41+), else the same for `'` (v0.4.14+). A lone quote is both prefix and suffix:
                #   value[1:0] panics.
                quotes = [
                    q
                    for q, since in (('"', STRIPS_DOUBLE_SINCE), ("'", STRIPS_SINGLE_SINCE))
                    if version >= since
                ]
                for quote in quotes:
                    if value.startswith(quote) and value.endswith(quote):
                        value = go_slice(value, 1, len(value) - 1)
                        break
                secrets[key] = value
        else:
            # parser.go: if before, ok := strings.CutSuffix(line, `"""`); ok → end of the value (no "\n"
            #   after its last line); else the raw line + "\n" (no trimming, no "#" cut, no comment skipping)
            before, ok = go_cut_suffix(line, TRIPLE)
            if ok:
                parsed_val.append(before)
                secrets[parsed_key] = "".join(parsed_val)
                parsed_val = []
                state = _SINGLELINE
                parsed_key = ""
            else:
                parsed_val.append(line + "\n")
    # A multi-line value still open at the end (or at a too-long line) is never stored.
    return secrets
