"""One deploy per app at a time from a checkout: a lock file saying who holds it, since when, at which commit.

Taken by hard-linking a fully written temp file into place, so the lock appears whole or not at all and two
deployers can never both win. A lock whose process is gone (same host, dead pid) and whose commands are gone
too is stale: reported and replaced. The holder records the session of every command it has running
(``sessions``, kept current as they start and end): after a ``kill -9`` of nixfly, its ``flyctl deploy`` or
``nix build`` runs on in its own session, and the lock stays held until they end. Replacing a stale lock
happens under an ``flock`` of a guard file beside it, so of many deployers that all found the same stale
lock exactly one replaces it; the kernel drops that flock when its process dies, however it dies.

A lock file that is not what nixfly writes (not JSON, fields of the wrong type: edited by hand
or written by something else) is damaged: no deploy takes it, ``inv lock.status`` says so, and
``inv lock.release`` removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nixfly import console, git, runner
from nixfly.errors import NixflyError
from nixfly.files import write_atomic
from nixfly.pipeline import Outcome, done, planned

if TYPE_CHECKING:
    from nixfly.config import Settings


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
    # The sessions of the commands the holder had running (each child leads its own session).
    sessions: tuple[int, ...] = ()

    def describe(self) -> str:
        if self.damaged:
            return f"a damaged lock file ({self.damaged})"
        return (
            f"{self.who}@{self.host} (pid {self.pid}, since {self.since}, git {self.revision or 'unknown'})"
        )

    def orphans(self) -> list[int]:
        """Live processes of this host in the holder's recorded sessions: its commands, running on."""
        if self.damaged or self.host != socket.gethostname():
            return []
        return runner.live_in_sessions(self.sessions)


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
    sessions = data.get("sessions", [])
    if not isinstance(sessions, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 < s <= MAX_PID for s in sessions
    ):
        return _damaged("sessions is not a list of process ids")
    return Holder(pid=pid, sessions=tuple(sessions), **{key: str(data.get(key, "")) for key in TEXT_FIELDS})


def _damaged(why: str) -> Holder:
    return Holder("", "", 0, "", "", "", damaged=why)


def is_stale(holder: Holder) -> bool:
    """The holder ran on this host and is gone, and so are the commands it started (a damaged lock is not
    stale: nobody can tell)."""
    return (
        not holder.damaged
        and holder.host == socket.gethostname()
        and not _alive(holder.pid)
        and not holder.orphans()
    )


@contextlib.contextmanager
def _takeover_guard(state_dir: Path, app: str) -> Iterator[None]:
    """Exclusive among everyone judging or replacing the lock of ``app`` in ``state_dir``.

    Judging a lock stale and removing it are two steps: without the guard, a second taker that judged the
    same stale lock would remove the first taker's fresh one. The guard file is never removed (removing
    it would let two takers hold flocks of two different files).
    """
    fd = os.open(state_dir / f".deploy-{app}.takeover", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the flock


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
        try:
            os.link(tmp, path)
            return path
        except FileExistsError:
            holder = read(path)
        if holder is not None and not is_stale(holder):
            # Held, or damaged: refused without touching anything (nor creating the guard file).
            raise _held_by(app, holder)
        with _takeover_guard(state_dir, app):
            # Judged again under the guard: another taker may have replaced the stale lock meanwhile.
            holder = read(path)
            if holder is not None and not is_stale(holder):
                raise _held_by(app, holder) from None
            if holder is not None:
                console.warn(f"removing stale deploy lock of {holder.describe()}: that process is gone")
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                # Taken by a deployer that found no lock at all (it needs no guard): it is alive.
                raise _held_by(app, read(path)) from None
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
    orphans = holder.orphans() if holder else []
    if orphans and holder is not None and not _alive(holder.pid):
        return NixflyError(
            f"a killed deploy of {app} still has commands running: lock held by {who}, gone, but its "
            f"{_commands(orphans)} still run",
            f"wait for them to end (or stop them: `kill -- -{holder.sessions[0]}`), then run again",
        )
    return NixflyError(
        f"another deploy of {app} is running: lock held by {who}",
        f"wait for it to finish; if it is dead, `inv lock.release --app {app}`",
    )


def _commands(pids: list[int]) -> str:
    """Processes for a message: pid and program name, a few at most."""
    shown = []
    for pid in pids[:3]:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            name = "?"
        shown.append(f"pid {pid} ({name})")
    more = f" and {len(pids) - 3} more" if len(pids) > 3 else ""
    return ", ".join(shown) + more


def release(state_dir: Path, app: str, *, force: bool = False) -> Holder | None:
    """Remove the lock; without ``force`` only this process's own lock (or a stale or damaged one).

    A stale lock is removed under the takeover guard, judged again there: a deployer may be replacing it
    this very moment, and its fresh lock must not be the one removed.
    """
    path = lock_path(state_dir, app)
    holder = read(path)
    if holder is None:
        return None
    if force or holder.damaged or holder.pid == os.getpid():
        return _remove(path, holder)
    if not is_stale(holder):
        raise NixflyError(
            f"the deploy lock of {app} belongs to {holder.describe()}, which is still running",
            "pass --force only if you are sure that deploy is dead",
        )
    with _takeover_guard(state_dir, app):
        holder = read(path)
        if holder is None:
            return None
        if not is_stale(holder):
            raise _held_by(app, holder)
        return _remove(path, holder)


def _remove(path: Path, holder: Holder) -> Holder:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise NixflyError(
            f"cannot remove {path}: {exc.strerror or exc}", "remove it by hand once no deploy runs"
        ) from None
    return holder


def step(
    stack: ExitStack, here: runner.Runner, s: Settings, command: str, then: Callable[[], None] = lambda: None
) -> Outcome:
    """The ``lock`` step of a run that changes the app (``inv deploy``, ``inv scale``): the app's lock, held
    until ``stack`` closes at the run's end; ``then`` starts once it is held (in a dry-run, which takes no
    lock: at once)."""
    if s.dry_run:
        then()
        return planned(f"would lock {s.app}")
    revision = git.revision(here, s.root)
    stack.enter_context(held(s.state_dir, s.app, revision, command))
    then()
    return done(f"held by pid {os.getpid()}")


@contextlib.contextmanager
def held(state_dir: Path, app: str, revision: str, command: str) -> Iterator[Path]:
    """Hold the lock for the ``with`` block; released on success, failure and Ctrl-C alike."""
    path = acquire(state_dir, app, revision, command)
    try:
        with runner.watch_children(lambda sessions: _record_sessions(path, sessions)):
            yield path
    finally:
        holder = read(path)
        if holder is not None and holder.pid == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _record_sessions(path: Path, sessions: list[int]) -> None:
    """Rewrite this process's lock with the sessions of its running commands (``runner.watch_children``).

    Replaced whole (rename), so a reader sees the old or the new holder, never half of one; only the holder
    writes its lock, and nobody takes over a lock whose holder is alive. A failure to write (a full disk)
    is a warning: the lock is still held, only a ``kill -9`` would then leave it without its commands.
    """
    try:
        data = json.loads(path.read_text())
        data["sessions"] = sessions
        write_atomic(path, json.dumps(data))
    except (NixflyError, OSError, ValueError) as exc:
        console.warn(f"could not record the running commands in {path.name}: {exc}")
