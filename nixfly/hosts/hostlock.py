"""Each host's own deploy lock, kept on the host: two people, or a person and CI, never change a host at once.

``mkdir`` is atomic: of two deployers, exactly one creates ``<base>/<app>/deploy.lock`` and writes its
holder inside (who, from which machine, pid, since when, git revision, command); the other reads that holder
and stops, naming it. A lock whose holder process is gone is stale and is replaced, with a warning. Whether a
process is gone can only be seen where it ran: on this machine (the holder's host is ours), or on the target
itself (``/proc/<pid>`` there, for a deploy started on the host). A holder on a third machine is never judged
stale: ``inv lock.release --target … --force`` removes it.

The lock lives beside the app's profile and records, so it is per app and per host, whichever checkout or
machine deploys; ``nixfly.lock`` (per app, in the checkout's ``.nixfly/``) still serialises the deploys made
from one checkout.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath

from nixfly import console
from nixfly.errors import NixflyError
from nixfly.hosts.host import Host
from nixfly.lock import Holder, is_stale

# TAKE and BREAK run one at a time on a host: without this, a breaker that compared the stale holder could
# remove the fresh lock another breaker took in between (compare, then rm). flock(1) (util-linux, busybox)
# holds fd 9 until the script exits (the empty guard file stays); a host without flock keeps the narrow
# window, as before.
_GUARD = r"""exec 9> "${dir%/*}/.${dir##*/}.guard"
if command -v flock > /dev/null 2>&1; then flock 9; fi"""
# Reads the holder from stdin first (always: a command that exits with its stdin unread can break the SSH
# channel that feeds it), then creates the directory or reports who has it.
TAKE = r"""set -eu
dir=$1
holder=$(cat)
mkdir -p "${dir%/*}"
GUARD
if mkdir "$dir" 2> /dev/null; then
  (umask 077 && printf '%s\n' "$holder" > "$dir/holder.json.tmp")
  mv -f "$dir/holder.json.tmp" "$dir/holder.json"
  echo taken
else
  echo held
  cat "$dir/holder.json" 2> /dev/null || true
fi
""".replace("GUARD", _GUARD)
READ = r"""if [ -d "$1" ]; then
  echo locked
  cat "$1/holder.json" 2> /dev/null || true
fi
"""
# Removes the lock only while it still holds the holder that was judged ("" for --force): a stale lock
# replaced by a live deployer in between is left alone.
BREAK = r"""set -eu
dir=$1 expected=$2
mkdir -p "${dir%/*}"
GUARD
if [ -n "$expected" ] && [ "$(cat "$dir/holder.json" 2> /dev/null || true)" != "$expected" ]; then
  echo changed
  exit 0
fi
rm -rf "$dir"
echo removed
""".replace("GUARD", _GUARD)
# Whether pid $2 of host $1 is gone, asked on the target (it answers only for its own processes).
GONE = r"""if [ "$(uname -n)" = "$1" ] && [ ! -d "/proc/$2" ]; then echo gone; fi"""
# A lock directory without a readable holder: being taken this very moment, or its taker died in between.
UNKNOWN = Holder("unknown", "unknown", 0, "unknown", "", "")


def describe(holder: Holder) -> str:
    """Who holds a lock and what they run, for messages and ``inv lock.status``."""
    if holder == UNKNOWN:
        return "an unknown holder (no holder file: being taken right now, or its taker died)"
    return f"{holder.describe()} running `{holder.command}`"


def _holder(text: str) -> Holder:
    try:
        data = json.loads(text)
        return Holder(
            who=str(data["who"]),
            host=str(data["host"]),
            pid=int(data["pid"]),
            since=str(data["since"]),
            revision=str(data.get("revision", "")),
            command=str(data.get("command", "")),
        )
    except (ValueError, TypeError, KeyError):
        return UNKNOWN


@dataclass
class HostLock:
    """The deploy lock of one app on one host (``path`` is on that host); ``label`` names both."""

    host: Host
    path: PurePosixPath
    label: str
    # The holder text this process wrote, while it holds the lock.
    mine: str = ""

    @property
    def held(self) -> bool:
        return bool(self.mine)

    def read(self) -> tuple[Holder | None, str]:
        """The holder (``None``: not locked) and its text as stored (what ``_remove`` compares)."""
        out = self.host.script(f"read {self.path}", READ, str(self.path), mutates=False).stdout
        state, _, text = out.partition("\n")
        if state.strip() != "locked":
            return None, ""
        return _holder(text), text.strip()

    def stale(self, holder: Holder) -> bool:
        """Whether the holder's process is gone: checked here or on the target, wherever it ran."""
        if holder.pid <= 0:
            return False
        if holder.host == socket.gethostname():
            return is_stale(holder)
        said = self.host.script(
            f"look for pid {holder.pid} of {holder.host}", GONE, holder.host, str(holder.pid), mutates=False
        )
        return said.stdout.strip() == "gone"

    def acquire(self, revision: str, command: str) -> None:
        """Take the lock or raise naming its holder; a stale lock is replaced (once)."""
        me = Holder(
            who=getpass.getuser(),
            host=socket.gethostname(),
            pid=os.getpid(),
            since=datetime.now(UTC).isoformat(timespec="seconds"),
            revision=revision,
            command=command,
        )
        text = json.dumps(asdict(me))
        for _ in range(2):
            out = self.host.script(f"lock {self.path}", TAKE, str(self.path), stdin=text).stdout
            state, _, stored = out.partition("\n")
            if self.host.dry_run or state.strip() == "taken":
                self.mine = text
                return
            holder = _holder(stored)
            if not self.stale(holder):
                raise NixflyError(
                    f"another deploy holds the lock of {self.label}: {describe(holder)}",
                    "wait for it to finish; if it is dead: `inv lock.release --target …` "
                    "(--force when its process cannot be checked from here)",
                )
            console.warn(f"removing the stale deploy lock of {self.label}: {holder.describe()} is gone")
            self._remove(stored.strip())
        raise NixflyError(f"could not take the deploy lock of {self.label}", "run the same command again")

    def release(self) -> None:
        """Give back a lock this process holds; never raises (it runs as a deploy ends, however it ends)."""
        if not self.mine or self.host.dry_run:
            self.mine = ""
            return
        try:
            self._remove(self.mine)
        except NixflyError as exc:
            console.warn(
                f"could not release the deploy lock of {self.label}: {exc.message} "
                "(`inv lock.status --target …` shows it)"
            )
        self.mine = ""

    def force_release(self, *, force: bool) -> Holder | None:
        """``inv lock.release``: remove a stale lock (any lock with ``force``); returns the holder removed."""
        holder, text = self.read()
        if holder is None:
            return None
        if not force and not self.stale(holder):
            raise NixflyError(
                f"the deploy lock of {self.label} belongs to {describe(holder)}, which is still running "
                "or cannot be checked from here",
                "pass --force only if you are sure that deploy is dead",
            )
        self._remove("" if force else text)
        return holder

    def _remove(self, expected: str) -> None:
        self.host.script(f"unlock {self.path}", BREAK, str(self.path), expected)
