"""Reading and writing files so that a bad file is one clear error and a crash or Ctrl-C never leaves half of
one behind."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from nixfly.errors import NixflyError, WriteError


def shown(path: Path) -> str:
    """``path`` as a person wants to read it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_bytes(path: Path, fix: str) -> bytes:
    """The content of the regular file ``path``; anything else is a ``NixflyError`` ending in ``fix``.

    A FIFO or a device is refused before it is opened: reading one would block, or never end.
    """
    name = shown(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise NixflyError(f"{name} is a directory, not a file", fix)
        if not stat.S_ISREG(info.st_mode):
            raise NixflyError(f"{name} is not a regular file (a pipe or a device?)", fix)
        return path.read_bytes()
    except FileNotFoundError:
        if os.path.islink(path):
            missing = os.readlink(path)
            raise NixflyError(f"{name} is a symlink to {missing}, which does not exist", fix) from None
        raise NixflyError(f"{name} not found", fix) from None
    except PermissionError:
        raise NixflyError(
            f"{name} is not readable (permission denied)", f"`chmod u+r {name}`, or {fix}"
        ) from None
    except OSError as exc:
        raise NixflyError(f"cannot read {name}: {exc.strerror or exc}", fix) from None


def write_atomic(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` in one step: write a temp file beside it, fsync, rename.

    The temp file is created with ``mode`` from the start (mkstemp makes it 0600), so a secret is never
    readable by others, not even for a moment. On any failure the temp file is removed, ``path`` keeps its
    previous content, and an operating system error (a directory that is a file, a full or read-only disk)
    is a ``NixflyError`` naming the file.
    """
    try:
        _write_atomic(path, text, mode)
    except OSError as exc:
        raise WriteError(
            f"cannot write {shown(path)}: {exc.strerror or exc}",
            f"{shown(path.parent)} must be a directory you can write to",
            path=str(path),
        ) from None


def _write_atomic(path: Path, text: str, mode: int) -> None:
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
