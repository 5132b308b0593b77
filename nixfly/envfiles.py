"""Dotenv files: reading the developer's ``.env`` and reading/writing nixfly's ``.env.fly``.

Read with python-dotenv's own parser and no ``${VAR}`` interpolation (it would rewrite credentials that happen
to contain a dollar sign, even inside single quotes), from the RAW text: Python's universal-newline mode would
turn a carriage return inside a value into a line feed without a word. python-dotenv's parser takes ``\\r\\n``
as a line ending by itself, so a Windows-edited file still reads; a CR anywhere else is refused by key.

Written single-quoted with python-dotenv's own escapes (``\\\\`` and ``\\'``), which round-trip every value
without a CR, multi-line JSON included.

Every failure to read is a ``NixflyError`` naming the file and what to do: no traceback, never a value.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from nixfly.errors import NixflyError
from nixfly.files import read_bytes, shown, write_atomic
from nixfly.runner import REDACT

# A CR that is not the first half of a CRLF line ending.
_LONE_CR = re.compile(r"\r(?!\n)")


def read_text(path: Path, fix: str) -> str:
    """The UTF-8 text of a file credentials come from; ``fix`` says what to do when it cannot be read."""
    data = read_bytes(path, fix)
    try:
        return data.decode("utf-8-sig")  # a BOM (Windows editors) is not part of the first key
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1  # where, never what
        raise NixflyError(
            f"{shown(path)} is not UTF-8 text (an invalid byte on line {line})",
            f"re-save it as UTF-8, or {fix}",
        ) from None


def read(path: Path, *, secret: bool = True) -> dict[str, str]:
    """Parse ``path``; a line python-dotenv cannot parse, or a carriage return that is not a CRLF line ending,
    is an error naming the file and the line or key, not a skip and not a silent change."""
    from dotenv.parser import parse_stream

    name = shown(path)
    text = read_text(path, f"fix {name} or run `inv bundle`")
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text, newline="")):
        line = binding.original.line
        if binding.error:
            raise NixflyError(
                f"{name}: line {line} is not KEY=VALUE",
                "fix that line (quote values with spaces or '#'; see python-dotenv's format)",
            )
        key, value = binding.key, binding.value or ""
        if "\r" in value:
            raise NixflyError(
                f"{name}: the value of {key} holds a carriage return, which a secret cannot carry intact",
                f"save {name} with LF line endings (`dos2unix {name}`) if it was edited on Windows, or "
                "remove the CR from the value",
            )
        lone = _LONE_CR.search(binding.original.string)
        if lone:
            # python-dotenv takes a lone CR as a line end: the text after it would become another key.
            where = line + binding.original.string.count("\n", 0, lone.start())
            raise NixflyError(
                f"{name}: line {where}{f' ({key})' if key else ''} holds a carriage return that is not part "
                "of a CRLF line ending",
                f"save {name} with LF or CRLF line endings (`dos2unix {name}`)",
            )
        if key is not None:
            values[key] = value
    if secret:
        for value in values.values():
            REDACT.add(value)
    return values


def quote(value: str) -> str:
    r"""Single-quote for python-dotenv: inside '…' it decodes exactly ``\\`` and ``\'``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(values: dict[str, str], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key}={quote(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def write(path: Path, values: dict[str, str], header: str = "") -> None:
    """Atomically, mode 0600; never through a symlink (it would put credentials where the link points)."""
    if os.path.islink(path):
        raise NixflyError(
            f"{shown(path)} is a symlink: nixfly does not write credentials through one",
            f"remove the link (`rm {shown(path)}`) and run `inv bundle` again",
        )
    write_atomic(path, render(values, header), mode=0o600)
