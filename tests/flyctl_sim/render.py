"""Output the way flyctl renders it: indented JSON (4 spaces), compact JSON, plain tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def json_text(value: Any) -> str:
    """``render.JSON``: indented 4 spaces, UTF-8 kept as is, trailing newline."""
    return json.dumps(value, indent=4, ensure_ascii=False) + "\n"


def compact_json(value: Any) -> str:
    """Go's ``json.Marshal``: no spaces at all."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> str:
    """A borderless table with upper-case headers, columns padded to the widest cell."""
    cells = [[h.upper() for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [title] if title else []
    lines += ["\t".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def key_values(pairs: Sequence[tuple[str, object]]) -> str:
    """Right-aligned ``Key: value`` lines (``fly volumes create`` output)."""
    width = max(len(k) for k, _ in pairs)
    return "".join(f"{k.rjust(width)}: {v}\n" for k, v in pairs)


def go_json(value: Any) -> str:
    """Go's ``json.Marshal``: compact, struct field order, and HTML-safe escapes (``<``, ``>``, ``&``,
    U+2028, U+2029 become ``\\u003c``...), which Python's ``json`` does not do."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text
