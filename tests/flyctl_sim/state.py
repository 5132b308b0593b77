"""The simulator's state on disk: ``state.json`` (the "server"), ``state.lock`` and ``calls.jsonl``.

Every reader and writer holds an exclusive ``fcntl.flock`` on ``state.lock``; ``state.json`` is replaced
atomically (write a temporary file, fsync, ``os.replace``) so an interrupted run never leaves it half-written.
``flock`` locks belong to an open file description: code that already holds the lock must use the
``*_unlocked`` helpers rather than lock again (that would block forever).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flyctl_sim import clock

HOME_ENV = "FLYCTL_SIM_HOME"
STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
CALLS_FILE = "calls.jsonl"

DEFAULT_VERSION = "0.4.87"
DEFAULT_EMAIL = "developer@example.com"
DEFAULT_USER_NAME = "Sim Developer"
DEFAULT_TOKEN = "fo1_flyctl_sim_user_token"

State = dict[str, Any]
PathLike = str | os.PathLike[str]


def default_state(
    *,
    version: str = DEFAULT_VERSION,
    logged_in: bool = True,
    email: str = DEFAULT_EMAIL,
    user_name: str = DEFAULT_USER_NAME,
) -> State:
    """A fresh Fly account: one personal org, a saved login (unless ``logged_in=False``), no apps."""
    return {
        "schema": 1,
        "version": version,
        "user": {"id": "usr_sim0000000001", "email": email, "name": user_name},
        "orgs": [
            {
                "id": "org_sim0000000001",
                "slug": "personal",
                "raw_slug": email.split("@")[0].replace(".", "-").replace("_", "-").lower() or "personal",
                "name": user_name,
                "type": "PERSONAL",
            }
        ],
        "auth": {
            "saved_token": DEFAULT_TOKEN if logged_in else None,
            "tokens": {DEFAULT_TOKEN: {"kind": "user", "app": None}},
        },
        "taken_names": [],
        "apps": {},
        "known_images": [],
        "unhealthy_images": [],
        "health_plans": {},
        "faults": [],
        "delays": {},
        "logs": {},
        "log_seq": 0,
        "created_at": clock.rfc3339(),
    }


def new_app(name: str, org: str, network: str = "default") -> dict[str, Any]:
    """The server's record of an app as `fly apps create` leaves it: never deployed, nothing attached."""
    return {
        "name": name,
        "org": org,
        "network": network,
        "created_at": clock.rfc3339(),
        "deployed": False,
        "secrets": {},
        "releases": [],
        "machines": [],
        "volumes": [],
        "config": None,
        "image": None,
    }


def home_dir(home: PathLike) -> Path:
    path = Path(home)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(home: PathLike) -> Iterator[Path]:
    """Hold the exclusive state lock for the duration of the block; yields the home directory."""
    path = home_dir(home)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_unlocked(home: PathLike) -> State:
    """The current state (a default account when none was written yet). Caller holds the lock."""
    try:
        text = (Path(home) / STATE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return default_state()
    loaded: State = json.loads(text)
    return loaded


def write_unlocked(home: PathLike, state: State) -> None:
    """Replace ``state.json`` atomically. Caller holds the lock."""
    path = home_dir(home)
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1, sort_keys=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path / STATE_FILE)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def transaction(home: PathLike) -> Iterator[State]:
    """Lock, read, let the block mutate the state, write it back if it changed (also on error: no)."""
    with locked(home):
        state = read_unlocked(home)
        before = json.dumps(state, sort_keys=True)
        yield state
        if json.dumps(state, sort_keys=True) != before or not (Path(home) / STATE_FILE).exists():
            write_unlocked(home, state)


def snapshot(home: PathLike) -> State:
    """A consistent read-only copy of the state."""
    with locked(home):
        return read_unlocked(home)


def append_call_unlocked(home: PathLike, record: dict[str, Any]) -> None:
    """Append one invocation record to ``calls.jsonl``. Caller holds the lock."""
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with open(home_dir(home) / CALLS_FILE, "a", encoding="utf-8") as fh:
        fh.write(line)


def read_calls(home: PathLike) -> list[dict[str, Any]]:
    try:
        text = (Path(home) / CALLS_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
