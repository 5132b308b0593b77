"""Writing files so that a crash or Ctrl-C never leaves half of one behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` in one step: write a temp file beside it, fsync, rename.

    The temp file is created with ``mode`` from the start (mkstemp makes it 0600), so a secret is never
    readable by others, not even for a moment. On any failure the temp file is removed and ``path`` keeps
    its previous content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temps(directory: Path, name: str) -> None:
    """Remove temp files a killed writer of ``name`` left behind (``kill -9`` skips every cleanup)."""
    for leftover in directory.glob(f".{name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def read_record(path: Path) -> dict[str, Any]:
    """A JSON object nixfly wrote earlier; missing or damaged reads as empty (the work is simply redone)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
