"""The one way nixfly runs an external command, here or (``remote.RemoteRunner``) on another host.

Every call takes an argv list (never a shell string built from values), is echoed redacted, honours
dry-run for anything that changes the world, passes secrets only on stdin, and turns failure into a typed
``CommandError`` holding one clear line. ``Runner.run`` is the whole algorithm (echo, dry-run, retries of
reads, errors); a subclass replaces only the transport (``_execute``, ``which``), as Fabric's ``Remote``
does for Invoke's runner.

Children run in their own session so that Ctrl-C reaches nixfly first; SIGTERM and SIGHUP are handled as a
Ctrl-C is (``cli.handle_stop_signals``). Every live child is registered:
whichever thread started it, ``stop_all`` ends it and everything it started, and a second Ctrl-C during
that stop cannot skip the final KILL. A Ctrl-C that lands while the main thread starts a child waits until
the child is registered; after ``stop_all`` no thread starts another.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar

from nixfly import console
from nixfly.config import DEFAULTS, Settings
from nixfly.errors import CommandError

# Secrets shorter than this are not masked in output: masking "1" or "ab" would shred every line. Values
# are never put in argv or messages in the first place; masking is the second line of defence.
MIN_REDACT_LENGTH = 4
GRACE_SECONDS = 5.0


class Redactor:
    """Masks every registered secret value in text meant for people: the value, each of its lines, and, for a
    JSON value, each string leaf (with its lines, and as it appears JSON-escaped), so a log line quoting one
    field of a credential file is masked too."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str, *, _depth: int = 0) -> None:
        for candidate in (value, *value.splitlines()):
            candidate = candidate.strip()
            if len(candidate) >= MIN_REDACT_LENGTH:
                self._values.add(candidate)
        if _depth >= 3:  # JSON inside a JSON string inside ...: enough
            return
        for leaf in self._json_strings(value):
            self.add(leaf, _depth=_depth + 1)
            self.add(self._json_escaped(leaf, ascii_only=True), _depth=3)
            self.add(self._json_escaped(leaf, ascii_only=False), _depth=3)

    @staticmethod
    def _json_strings(value: str) -> list[str]:
        """Every string leaf of ``value`` read as a JSON object or array; [] when it is not one."""
        import json

        text = value.strip()
        if not text.startswith(("{", "[")):
            return []
        try:
            stack = [json.loads(text)]
        except ValueError:
            return []
        leaves = []
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                leaves.append(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        return leaves

    @staticmethod
    def _json_escaped(leaf: str, *, ascii_only: bool) -> str:
        """``leaf`` as it stands between the quotes of JSON text (``\\n``, ``\\"``, maybe ``\\uXXXX``)."""
        import json

        return json.dumps(leaf, ensure_ascii=ascii_only)[1:-1]

    def __call__(self, text: str) -> str:
        # Longest first, so a value that contains another is masked whole.
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


REDACT = Redactor()


@dataclass(frozen=True)
class Completed:
    """What a command did. ``dry_run`` results carry no output: the command did not run."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    dry_run: bool = False
    # Ended by ``stop`` (a Ctrl-C), not by itself.
    stopped: bool = False


def display(argv: Sequence[str]) -> str:
    """The command as a person would type it, with secret values masked."""
    return REDACT(shlex.join(argv))


# A word longer than this is cut in one-line messages (store paths and URLs fit; a huge value does not).
BRIEF_WORD = 160


def brief_command(argv: Sequence[str]) -> str:
    """The command for a one-line message: its first words, each cut short, and an inline shell script
    (``sh -c SCRIPT NAME ARGS…``) shown by its size and the words after it, never its text."""
    words = [str(a) for a in argv]
    label, tail = "", []
    if len(words) >= 3 and words[1] == "-c" and ("\n" in words[2] or len(words[2]) > BRIEF_WORD):
        label, tail = f" <{len(words[2].splitlines())}-line script>", words[3:5]
    head = words[:2] if label else words[:3]

    def shown(part: list[str]) -> str:
        cut = [w if len(w) <= BRIEF_WORD else f"{w[: BRIEF_WORD - 1]}…" for w in part]
        return REDACT(" ".join(shlex.quote(w) for w in cut))

    return shown(head) + label + (f" {shown(tail)}" if tail else "")


def failure_line(stderr: str, stdout: str = "") -> str:
    """The telling line of a failed command's output: its last ``Error``/``error:`` line, else the last."""
    lines = [line.strip() for line in (stderr or stdout).splitlines() if line.strip()]
    for line in reversed(lines):
        if line.lower().startswith("error"):
            return REDACT(line)
    return REDACT(lines[-1]) if lines else "(no output)"


Cwd = Path | PurePosixPath

# --- time limits ------------------------------------------------------------------------------------------
# Seconds a command may run when its caller names no bound, by ``limit_key``: config's documented defaults
# until a task's settings replace them with the project's ``nixfly.timeouts`` (``set_limits``).
LIMITS: dict[str, float] = {key: float(value) for key, value in DEFAULTS["timeouts"].items()}
# flyctl commands that wait for machines to be replaced, started or stopped.
FLYCTL_LONG = ("deploy", "scale")
# nix commands that download, build or copy closures.
NIX_LONG = ("build", "copy", "flake")


def set_limits(limits: Mapping[str, float]) -> None:
    """Use ``limits`` (``nixfly.timeouts``, checked by config) for every later command of this process."""
    LIMITS.update(limits)


def limit_key(argv: Sequence[str], *, remote: bool) -> str:
    """Which ``nixfly.timeouts`` key bounds ``argv``: by its program, the long-running subcommands apart."""
    tool = PurePosixPath(argv[0]).name if argv else ""
    sub = next((a for a in argv[1:] if not a.startswith("-")), "")
    if tool == "flyctl" or tool == "fly":
        return "flyctl_deploy" if sub in FLYCTL_LONG else "flyctl"
    if tool == "nix":
        # Nix's global options come first (`nix --extra-experimental-features … build`).
        return "nix_build" if any(a in NIX_LONG for a in argv[1:]) else "nix"
    if tool.startswith("nix-"):
        return "nix"
    if tool in ("skopeo", "git", "ssh"):
        return tool
    return "ssh" if remote else "other"


# A bound for every command started inside ``deadline``: when it ends, its length, and what it is.
_DEADLINES: list[tuple[float, float, str]] = []


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Every command started inside the block ends by ``seconds`` from now (``what`` names that bound in
    the error): a step bounded as a whole (verify, by ``health.timeout``) cannot be outlasted by one hung
    call. Process-wide, not per thread: a step's concurrent reads are bounded too."""
    _DEADLINES.append((time.monotonic() + seconds, seconds, what))
    try:
        yield
    finally:
        _DEADLINES.pop()


@dataclass
class Runner:
    """Runs commands on this machine. One per task invocation; ``dry_run`` comes from the task's flags."""

    dry_run: bool = False
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    retry_base_seconds: float = 0.5
    # Prefix of echoed lines (a remote runner names its host here).
    label: str = ""
    # Whether reads still run in a dry-run: here they do (plans need the current state); a remote dry-run
    # opens no connection at all.
    reads_in_dry_run: ClassVar[bool] = True

    @property
    def where(self) -> str:
        """Where the command runs, for messages: " on HOST" remotely, "" here."""
        return ""

    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def close(self) -> None:
        """Release the transport (nothing to release here)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        mutates: bool = True,
        check: bool = True,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Cwd | None = None,
        retries: int = 0,
        stream: Callable[[str], None] | None = None,
        hint: str | None = None,
        quiet: bool = False,
    ) -> Completed:
        """Run ``argv``; see the module docstring for the contract.

        ``mutates=False`` marks a read: it runs even in dry-run (plans need the current state) and may be
        retried with backoff. Mutating calls are never retried: a half-applied change must be looked at.
        ``stream`` receives each output line as it arrives (long builds, logs). ``check=False`` returns a
        failed result instead of raising (a command that is not there still raises).
        """
        argv = tuple(str(a) for a in argv)
        if retries and mutates:
            raise ValueError("mutating commands are never retried")
        shown = display(argv) + (" < stdin" if stdin is not None else "")
        if self.dry_run and (mutates or not self.reads_in_dry_run):
            console.say(f"{self.label}[dry-run] would run: {shown}")
            return Completed(argv, 0, dry_run=True)
        key = None
        if timeout is None:
            key = limit_key(argv, remote=bool(self.where))
            timeout = LIMITS[key]
        attempt = 0
        while True:
            bound, why, cut = timeout, f"nixfly.timeouts.{key}" if key else "", ""
            if _DEADLINES:
                ends, seconds, what = min(_DEADLINES)
                if ends - time.monotonic() < bound:
                    bound, why = max(0.1, ends - time.monotonic()), what
                    where = self.where
                    cut = f"`{brief_command(argv)}…` was stopped{where}: the {seconds:g}s of {what} ran out"
            if _STOPPING.is_set():
                # stop_all ran (a Ctrl-C): a thread that had not seen it yet must start nothing more.
                raise CommandError(
                    f"`{brief_command(argv)}…` was not started{self.where}: stopping after an interrupt",
                    hint,
                    kind="failed",
                    argv=argv,
                )
            if not quiet:
                console.note(f"{self.label}$ {shown}")
            try:
                result = self._execute(
                    argv, stdin=stdin, timeout=bound, env=env, cwd=cwd, stream=stream, quiet=quiet, hint=hint
                )
            except CommandError as exc:
                if exc.kind != "timed out" or not why:
                    raise
                raise CommandError(
                    cut or f"{exc.message} ({why})",
                    f"if it is only slow, raise {why} in invoke.yaml" + (f"; {hint}" if hint else ""),
                    kind="timed out",
                    argv=argv,
                ) from None
            if result.stopped:
                # Ended by stop_all (a Ctrl-C, seen by another thread): not a result to act on, retry or fall
                # back from: any of those would start the command again.
                raise CommandError(
                    f"`{brief_command(argv)}…` was stopped{self.where}", hint, kind="failed", argv=argv
                )
            if result.returncode == 0 or not check:
                return result
            if attempt >= retries:
                raise CommandError(
                    f"`{brief_command(argv)}…` failed{self.where} (exit {result.returncode}): "
                    f"{failure_line(result.stderr, result.stdout)}",
                    hint,
                    kind="failed",
                    argv=argv,
                    returncode=result.returncode,
                    stderr=result.stderr,
                )
            delay = self.retry_base_seconds * 2**attempt
            console.warn(f"{brief_command(argv)} failed (exit {result.returncode}); retrying in {delay:.1f}s")
            time.sleep(delay)
            attempt += 1

    # --- the transport: what a remote runner replaces -------------------------------------------------------
    def _execute(
        self,
        argv: tuple[str, ...],
        *,
        stdin: str | None,
        timeout: float | None,
        env: Mapping[str, str] | None,
        cwd: Cwd | None,
        stream: Callable[[str], None] | None,
        quiet: bool,
        hint: str | None,
    ) -> Completed:
        started = time.monotonic()
        proc = self.start(argv, stdin=stdin is not None, env=env, cwd=Path(cwd) if cwd else None, hint=hint)
        out: list[str] = []
        err: list[str] = []
        readers = [
            threading.Thread(target=_pump, args=(proc.stdout, out, stream), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, err, stream), daemon=True),
        ]
        # Everything after the child exists sits inside the try: a Ctrl-C that lands while the reader
        # threads start must stop the child too, or it outlives nixfly.
        try:
            for reader in readers:
                reader.start()
            if stdin is not None:
                _feed(proc, stdin)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(proc)
            raise CommandError(
                f"`{brief_command(argv)}…` did not finish within {timeout:g}s and was stopped",
                hint,
                kind="timed out",
                argv=argv,
            ) from None
        except BaseException:
            # Ctrl-C or any error here: the child must not outlive us.
            stop(proc)
            raise
        finally:
            _forget(proc)
        for reader in readers:
            reader.join()
        return Completed(
            argv,
            proc.returncode,
            "".join(out),
            "".join(err),
            time.monotonic() - started,
            stopped=proc in _STOPPED,
        )

    def start(
        self,
        argv: Sequence[str],
        *,
        stdin: bool = False,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        hint: str | None = None,
        merge_stderr: bool = False,
    ) -> subprocess.Popen[str]:
        """Start a child in its own session (so ``stop`` can end all it started) with piped output.

        ``run`` uses it for commands that finish; long-running ones (``inv dev``) use it directly. The
        child stays registered until ``stop`` (or ``run``) is done with it, for ``stop_all``.
        """
        with _interrupt_held():
            try:
                proc = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                    cwd=cwd or self.cwd,
                    env={**os.environ, **self.env, **(env or {})},
                    text=True,
                    encoding="utf-8",
                    errors="replace",
                    start_new_session=True,
                )
            except FileNotFoundError:
                raise CommandError(
                    f"{argv[0]}: command not found",
                    hint or f"install {argv[0]} or put it on PATH",
                    kind="not found",
                    argv=argv,
                ) from None
            except PermissionError:
                raise CommandError(f"{argv[0]}: not executable", hint, kind="not found", argv=argv) from None
            with _LIVE_LOCK:
                _LIVE.add(proc)
                _changed_locked()
                missed = _STOPPING.is_set()
        if missed:
            # stop_all began while another thread was starting this child: its list does not hold it.
            stop(proc)
        return proc


def here(settings: Settings) -> Runner:
    """The runner on this machine for one task run: a task makes it once and passes it to everything it
    calls, so every local command of the run honours the same ``--dry-run`` and runs in the checkout."""
    return Runner(dry_run=settings.dry_run, cwd=settings.root)


# The signals nixfly handles as a Ctrl-C: INT (Python's KeyboardInterrupt), and TERM and HUP once
# ``cli.handle_stop_signals`` made them raise errors.Stopped.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _interrupt_held() -> Iterator[None]:
    """A Ctrl-C (or TERM, HUP) that lands while a child is being started and registered waits until it is
    registered.

    Raised between the fork and the registration, the KeyboardInterrupt would leave a child that
    ``stop_all`` does not know and nothing stops. Only the main thread gets signals (and may set their
    handlers); elsewhere there is nothing to hold.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # Only signals handled from Python: None (set outside Python) could not be put back, and an ignored
    # or default one raises nothing in this process.
    handled = [sig for sig in STOP_SIGNALS if callable(signal.getsignal(sig))]
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum)) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in held[:1]:
            # Delivered again to whatever handled it before (KeyboardInterrupt or Stopped, from here).
            signal.raise_signal(signum)


def _feed(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(text)
        proc.stdin.close()
    except BrokenPipeError:
        # The child exited without reading; its exit code says why.
        pass


def _pump(pipe: object, sink: list[str], stream: Callable[[str], None] | None) -> None:
    for line in pipe:  # type: ignore[attr-defined]
        sink.append(line)
        if stream is not None:
            stream(REDACT(line.rstrip("\n")))


# --- stopping children --------------------------------------------------------------------------------------
_LIVE: set[subprocess.Popen[str]] = set()
_LIVE_LOCK = threading.Lock()
# Set by stop_all, for good: nixfly ends after a Ctrl-C, so from then on no thread starts a command.
_STOPPING = threading.Event()
# Children ``stop`` signalled: the thread waiting on one must not take its end for a failure to retry.
_STOPPED: weakref.WeakSet[subprocess.Popen[str]] = weakref.WeakSet()


# Called with the sessions of the live children whenever one starts or ends (``watch_children``).
_WATCHERS: list[Callable[[list[int]], None]] = []


@contextlib.contextmanager
def watch_children(watcher: Callable[[list[int]], None]) -> Iterator[None]:
    """Tell ``watcher`` the sessions of the running children each time that set changes (the deploy lock
    records them: after a ``kill -9`` of nixfly they run on, and the lock must stay held meanwhile).

    ``watcher`` runs under the registry's lock, from whichever thread started or reaped a child, and must
    not raise.
    """
    with _LIVE_LOCK:
        _WATCHERS.append(watcher)
        watcher(_sessions_locked())
    try:
        yield
    finally:
        with _LIVE_LOCK:
            _WATCHERS.remove(watcher)


def _sessions_locked() -> list[int]:
    # A child started with start_new_session leads its session: its pid is the session id.
    return sorted(proc.pid for proc in _LIVE)


def _changed_locked() -> None:
    for watcher in _WATCHERS:
        watcher(_sessions_locked())


def _forget(proc: subprocess.Popen[str]) -> None:
    with _LIVE_LOCK:
        if proc in _LIVE:
            _LIVE.discard(proc)
            _changed_locked()


def live_in_sessions(sessions: Iterable[int]) -> list[int]:
    """Live (not zombie) processes of this machine in any of ``sessions``, by one pass over /proc (Linux;
    elsewhere none)."""
    wanted = {str(sid) for sid in sessions}
    if not wanted:
        return []
    return sorted(pid for pid, sid in _proc_sessions() if sid in wanted)


def _proc_sessions() -> Iterator[tuple[int, str]]:
    """(pid, session id) of every live process."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields[0] is the state (field 3), fields[3] the session id (field 6).
        if fields[0] != "Z":
            yield int(entry.name), fields[3]


def _session(sid: int) -> Iterator[int]:
    """Live processes of session ``sid`` (Linux; elsewhere none): children that left the process group too."""
    return iter(live_in_sessions([sid]))


def _signal_all(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    if sig == signal.SIGKILL:
        for pid in _session(proc.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def stop(proc: subprocess.Popen[str], grace: float = GRACE_SECONDS) -> None:
    """Stop a child started by ``Runner``, and everything in its session: TERM, then KILL after ``grace``.

    A Ctrl-C (or TERM, HUP) while this waits does not cut it short: the KILL still happens, then that
    interrupt is raised.
    """
    interrupted: KeyboardInterrupt | None = None
    try:
        if proc.poll() is not None and not any(_session(proc.pid)):
            return
        _STOPPED.add(proc)
        _signal_all(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                proc.wait(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
                if not any(_session(proc.pid)):
                    return
            except subprocess.TimeoutExpired:
                pass
            except KeyboardInterrupt as exc:
                interrupted = exc
                break
        _signal_all(proc, signal.SIGKILL)
        while True:
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                break
            except KeyboardInterrupt as exc:
                interrupted = exc
    finally:
        _forget(proc)
    if interrupted is not None:
        raise interrupted


def stop_all() -> None:
    """Stop every child still running, whichever thread started it (after a Ctrl-C in the main thread).

    From then on this process starts no command: a thread still working (a concurrent read, a host of a
    group) gets a ``CommandError`` instead, and a child another thread was starting at this very moment is
    stopped as soon as it is registered.
    """
    with _LIVE_LOCK:
        _STOPPING.set()
        live = list(_LIVE)
    for proc in live:
        stop(proc)
