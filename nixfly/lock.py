"""One deploy per app at a time from a checkout: a lock file saying who holds it, since when, at which commit.

Taken by hard-linking a fully written temp file into place, so the lock appears whole or not at all and two
deployers can never both win. A lock whose process is gone (same host, dead pid) is stale: reported and
replaced. A lock file that is not what nixfly writes (not JSON, fields of the wrong type: edited by hand
or written by something else) is damaged: no deploy takes it, ``inv lock.status`` says so, and
``inv lock.release`` removes it.
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
    # Why the file cannot be trusted ("" when it is a lock nixfly wrote).
    damaged: str = ""

    def describe(self) -> str:
        if self.damaged:
            return f"a damaged lock file ({self.damaged})"
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


# Linux's largest pid_max is 2**22; anything beyond a C int cannot be a process id at all.
MAX_PID = 2**31 - 1
TEXT_FIELDS = ("who", "host", "since", "revision", "command")


def read(path: Path) -> Holder | None:
    """The lock's holder, or None when there is no lock; a file nixfly did not write is ``damaged``."""
    try:
        data: Any = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return _damaged("it is a directory")
    except OSError as exc:
        return _damaged(f"unreadable: {exc.strerror or exc}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _damaged("not JSON")
    if not isinstance(data, dict):
        return _damaged(f"JSON {type(data).__name__}, not an object")
    pid = data.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid <= MAX_PID:
        return _damaged(f"pid {str(pid)[:20]!r} is not a process id")
    wrong = [key for key in TEXT_FIELDS if not isinstance(data.get(key, ""), str)]
    if wrong or not data.get("host"):
        return _damaged(f"{wrong[0]} is not text" if wrong else "no host")
    return Holder(pid=pid, **{key: str(data.get(key, "")) for key in TEXT_FIELDS})


def _damaged(why: str) -> Holder:
    return Holder("", "", 0, "", "", "", damaged=why)


def is_stale(holder: Holder) -> bool:
    """The holder ran on this host and is gone (a damaged lock is not stale: nobody can tell)."""
    return not holder.damaged and holder.host == socket.gethostname() and not _alive(holder.pid)


def acquire(state_dir: Path, app: str, revision: str, command: str) -> Path:
    path = lock_path(state_dir, app)
    me = {
        "who": getpass.getuser(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": revision,
        "command": command,
    }
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".lock.", suffix=".tmp")
    except OSError as exc:
        raise NixflyError(
            f"cannot take the deploy lock of {app} in {state_dir.name}: {exc.strerror or exc}",
            f"{state_dir} must be a directory you can write to (nixfly.state_dir)",
        ) from None
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
                raise _held_by(app, holder) from None
        raise NixflyError(f"could not take the deploy lock for {app}", "retry")
    except OSError as exc:
        raise NixflyError(
            f"cannot take the deploy lock of {app}: {exc.strerror or exc}",
            f"{state_dir} must be a directory you can write to (nixfly.state_dir)",
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _held_by(app: str, holder: Holder | None) -> NixflyError:
    if holder is not None and holder.damaged:
        return NixflyError(
            f"the deploy lock of {app} is {holder.describe()}",
            f"if no deploy of {app} is running, `inv lock.release --app {app}` removes it",
        )
    who = holder.describe() if holder else "someone"
    return NixflyError(
        f"another deploy of {app} is running: lock held by {who}",
        f"wait for it to finish; if it is dead, `inv lock.release --app {app}`",
    )


def release(state_dir: Path, app: str, *, force: bool = False) -> Holder | None:
    """Remove the lock; without ``force`` only this process's own lock (or a stale or damaged one)."""
    path = lock_path(state_dir, app)
    holder = read(path)
    if holder is None:
        return None
    if not force and not holder.damaged and holder.pid != os.getpid() and not is_stale(holder):
        raise NixflyError(
            f"the deploy lock of {app} belongs to {holder.describe()}, which is still running",
            "pass --force only if you are sure that deploy is dead",
        )
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise NixflyError(
            f"cannot remove {path}: {exc.strerror or exc}", "remove it by hand once no deploy runs"
        ) from None
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
