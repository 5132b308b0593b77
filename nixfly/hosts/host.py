"""The machine a target runs on, seen through its runner: this one (``Runner``) or another (``RemoteRunner``).

Activation is written once against ``Host``: every path it handles is a path on the target machine, every
command goes through ``host.runner``. Only file access and the health probe differ: locally they are Python
(``write_atomic``, urllib), remotely they are small commands over the same SSH connection.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from nixfly import console
from nixfly.files import write_atomic
from nixfly.probe import Expect, Verdict, http_ok, judge_answer
from nixfly.remote import RemoteRunner
from nixfly.runner import Completed, Runner

# Written beside the target and renamed over it: a reader never sees half a file.
WRITE = 'umask 077; mkdir -p "${1%/*}"; cat > "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"'
# One HTTP GET on the target itself (the app listens on the target's localhost): prints the answer's body
# (at most 64 KiB), then a last line with the status code ("000" when nothing answered).
PROBE = r"""url=$1 timeout=$2
if command -v curl > /dev/null 2>&1; then
  exec curl -sS --max-filesize 65536 -w '\n%{http_code}' --max-time "$timeout" "$url"
fi
exec python3 -c '
import sys, urllib.request, urllib.error
try:
    answer = urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))
    body, code = answer.read(65536), answer.status
except urllib.error.HTTPError as exc:
    body, code = b"", exc.code
except Exception as exc:
    sys.exit(f"000 {exc}")
sys.stdout.write(body.decode("utf-8", "replace") + "\n" + str(code))
' "$url" "$timeout"
"""


class Host:
    """This machine. ``base`` is nixfly's state directory for targets on it."""

    def __init__(self, name: str, runner: Runner, base: PurePosixPath) -> None:
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

    @property
    def reads_in_dry_run(self) -> bool:
        """Whether reads still run in a dry-run (they do here; over SSH a dry-run opens no connection)."""
        return self.runner.reads_in_dry_run

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

    def probe(self, url: str, timeout: float, expect: Expect | None = None) -> Verdict:
        return http_ok(url, timeout, expect)

    def close(self) -> None:
        """Nothing to release for this machine."""


class RemoteHost(Host):
    """Another machine over SSH; ``base`` is relative to the login user's home there."""

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

    def probe(self, url: str, timeout: float, expect: Expect | None = None) -> Verdict:
        if self.dry_run:
            return Verdict(False, f"GET {url} not tried (dry-run)")
        result = self.runner.run(
            ["sh", "-c", PROBE, "nixfly-probe", url, f"{timeout:g}"], mutates=False, check=False, quiet=True
        )
        body, _, code = result.stdout.rpartition("\n")
        if code.isdigit() and code != "000":
            return judge_answer(url, int(code), body.encode(), expect or Expect())
        reason = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        return Verdict(False, f"GET {url} failed: {reason}")

    def close(self) -> None:
        self.remote.close()
