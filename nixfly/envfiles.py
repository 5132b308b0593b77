"""Dotenv files: reading the developer's ``.env`` and reading/writing nixfly's ``.env.fly``.

Read with python-dotenv and ``interpolate=False``: its ``${VAR}`` expansion would rewrite credentials that
happen to contain a dollar sign, even inside single quotes. Written single-quoted with python-dotenv's own
escapes (``\\\\`` and ``\\'``), which round-trip every value, multi-line JSON included.
"""

from __future__ import annotations

import io
from pathlib import Path

from nixfly.errors import NixflyError
from nixfly.files import write_atomic
from nixfly.runner import REDACT


def read(path: Path, *, secret: bool = True) -> dict[str, str]:
    """Parse ``path``; a line python-dotenv cannot parse is an error naming the file and line, not a skip."""
    from dotenv.main import DotEnv
    from dotenv.parser import parse_stream

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NixflyError(f"{path.name} not found", f"create {path} or run `inv bundle`") from None
    except UnicodeDecodeError:
        raise NixflyError(f"{path.name} is not UTF-8 text", "re-save it as UTF-8") from None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.line
            raise NixflyError(
                f"{path.name}: line {line} is not KEY=VALUE",
                "fix that line (quote values with spaces or '#'; see python-dotenv's format)",
            )
    values = {
        key: value or "" for key, value in DotEnv(path, interpolate=False, encoding="utf-8").dict().items()
    }
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
    """Atomically, mode 0600."""
    write_atomic(path, render(values, header), mode=0o600)
