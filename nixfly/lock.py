"""One deploy per app at a time from a checkout: a lock file saying who holds it, since when, at which commit.

Taken by hard-linking a fully written temp file into place, so the lock appears whole or not at all and two
deployers can never both win. A lock whose process is gone (same host, dead pid) is stale: reported and
replaced.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nixfly import console
from nixfly.errors import NixflyError


@dataclass(frozen=True)
class Holder:
    who: str
    host: str
    pid: int
    since: str
    revision: str
    command: str

    def describe(self) -> str:
        return (
            f"{self.who}@{self.host} (pid {self.pid}, since {self.since}, git {self.revision or 'unknown'})"
        )


def lock_path(state_dir: Path, app: str) -> Path:
    return state_dir / f"deploy-{app}.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read(path: Path) -> Holder | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        return Holder("unknown", "unknown", 0, "unknown", "", "unreadable lock file")
    return Holder(
        who=str(data.get("who", "")),
        host=str(data.get("host", "")),
        pid=int(data.get("pid", 0)),
        since=str(data.get("since", "")),
        revision=str(data.get("revision", "")),
        command=str(data.get("command", "")),
    )


def is_stale(holder: Holder) -> bool:
    return holder.host == socket.gethostname() and not _alive(holder.pid)


def acquire(state_dir: Path, app: str, revision: str, command: str) -> Path:
    path = lock_path(state_dir, app)
    state_dir.mkdir(parents=True, exist_ok=True)
    me = {
        "who": getpass.getuser(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": revision,
        "command": command,
    }
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".lock.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        for _ in range(2):
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                holder = read(path)
                if holder is not None and is_stale(holder):
                    console.warn(f"removing stale deploy lock of {holder.describe()}: that process is gone")
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    continue
                who = holder.describe() if holder else "someone"
                raise NixflyError(
                    f"another deploy of {app} is running: lock held by {who}",
                    f"wait for it to finish; if it is dead, `inv lock.release --app {app}`",
                ) from None
        raise NixflyError(f"could not take the deploy lock for {app}", "retry")
    finally:
        os.unlink(tmp)


def release(state_dir: Path, app: str, *, force: bool = False) -> Holder | None:
    """Remove the lock; without ``force`` only this process's own lock (or a stale one)."""
    path = lock_path(state_dir, app)
    holder = read(path)
    if holder is None:
        return None
    if not force and holder.pid != os.getpid() and not is_stale(holder):
        raise NixflyError(
            f"the deploy lock of {app} belongs to {holder.describe()}, which is still running",
            "pass --force only if you are sure that deploy is dead",
        )
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return holder


@contextlib.contextmanager
def held(state_dir: Path, app: str, revision: str, command: str) -> Iterator[Path]:
    """Hold the lock for the ``with`` block; released on success, failure and Ctrl-C alike."""
    path = acquire(state_dir, app, revision, command)
    try:
        yield path
    finally:
        holder = read(path)
        if holder is not None and holder.pid == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
