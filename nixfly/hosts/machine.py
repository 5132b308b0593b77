"""The machine a target runs on, seen through its runner: this one (``Runner``) or another (``RemoteRunner``).

Activation is written once against ``Host``: every path it handles is a path on the target machine, every
command goes through ``host.runner``. Only file access and the health probe differ: locally they are Python
(``write_atomic``, urllib), remotely they are small commands over the same SSH connection.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from nixfly import console
from nixfly.files import write_atomic
from nixfly.health import Verdict, http_ok
from nixfly.remote import RemoteRunner
from nixfly.runner import Completed, Runner

Executor = Runner | RemoteRunner

# Written beside the target and renamed over it: a reader never sees half a file.
WRITE = 'umask 077; mkdir -p "${1%/*}"; cat > "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"'
# One HTTP GET on the target itself (the app listens on the target's localhost); prints the status code.
PROBE = r"""url=$1 timeout=$2
if command -v curl > /dev/null 2>&1; then
  exec curl -sS -o /dev/null -w '%{http_code}' --max-time "$timeout" "$url"
fi
exec python3 -c '
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except Exception as exc:
    sys.exit(f"000 {exc}")
' "$url" "$timeout"
"""


class Host:
    """This machine. ``base`` is nixfly's state directory for targets on it."""

    # Whether reads still run in a dry-run (they do here; over SSH a dry-run opens no connection).
    reads_in_dry_run = True

    def __init__(self, name: str, runner: Executor, base: PurePosixPath) -> None:
        self.name = name
        self.runner = runner
        self._base = base

    @property
    def base(self) -> PurePosixPath:
        return self._base

    @property
    def dry_run(self) -> bool:
        return self.runner.dry_run

    @property
    def label(self) -> str:
        return self.runner.label

    def script(
        self, what: str, script: str, *args: str, stdin: str | None = None, mutates: bool = True
    ) -> Completed:
        """Run shell ``script`` with ``args`` as its positional parameters; ``what`` is shown in its place."""
        if self.dry_run and (mutates or not self.reads_in_dry_run):
            console.say(f"{self.label}[dry-run] would {what}")
            return Completed(("sh", "-c", what), 0, dry_run=True)
        if mutates:
            console.note(f"{self.label}{what}")
        argv = ["sh", "-c", script, "nixfly", *args]
        return self.runner.run(argv, stdin=stdin, mutates=mutates, quiet=True)

    def read_text(self, path: PurePosixPath) -> str:
        """The file's text, or "" when it does not exist."""
        try:
            return Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def write_text(self, path: PurePosixPath, text: str) -> None:
        if self.dry_run:
            console.say(f"{self.label}[dry-run] would write {path}")
            return
        write_atomic(Path(path), text, mode=0o600)

    def probe(self, url: str, timeout: float) -> Verdict:
        return http_ok(url, timeout)

    def close(self) -> None:
        """Nothing to release for this machine."""


class RemoteHost(Host):
    """Another machine over SSH; ``base`` is relative to the login user's home there."""

    reads_in_dry_run = False

    def __init__(self, name: str, runner: RemoteRunner, base: PurePosixPath) -> None:
        super().__init__(name, runner, base)
        self.remote = runner

    @property
    def base(self) -> PurePosixPath:
        # Asked of the host on first use, not when the target is opened: a dry-run never connects.
        return self.remote.home() / self._base

    def read_text(self, path: PurePosixPath) -> str:
        if self.dry_run:
            return ""  # a dry-run opens no connection: plan as for a target with no state yet
        result = self.runner.run(["cat", str(path)], mutates=False, check=False, quiet=True)
        return result.stdout if result.returncode == 0 else ""

    def write_text(self, path: PurePosixPath, text: str) -> None:
        self.script(f"write {path}", WRITE, str(path), stdin=text)

    def probe(self, url: str, timeout: float) -> Verdict:
        if self.dry_run:
            return Verdict(False, f"GET {url} not tried (dry-run)")
        result = self.runner.run(
            ["sh", "-c", PROBE, "nixfly-probe", url, f"{timeout:g}"], mutates=False, check=False, quiet=True
        )
        code = result.stdout.strip()[-3:]
        if code.isdigit() and code != "000":
            return Verdict(200 <= int(code) < 300, f"GET {url} → {code}")
        reason = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        return Verdict(False, f"GET {url} failed: {reason}")

    def close(self) -> None:
        self.remote.close()
