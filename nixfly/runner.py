"""The one way nixfly runs an external command.

Every call takes an argv list (never a shell string built from values), is echoed redacted, honours
dry-run for anything that changes the world, passes secrets only on stdin, and turns failure into a
``NixflyError`` holding one clear line. Children run in their own session so that Ctrl-C reaches nixfly
first and nixfly stops them (and everything they started) before it exits.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nixfly import console
from nixfly.errors import NixflyError

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


def display(argv: Sequence[str]) -> str:
    """The command as a person would type it, with secret values masked."""
    return REDACT(shlex.join(argv))


def failure_line(stderr: str, stdout: str = "") -> str:
    """The telling line of a failed command's output: its last ``Error``/``error:`` line, else the last."""
    lines = [line.strip() for line in (stderr or stdout).splitlines() if line.strip()]
    for line in reversed(lines):
        if line.lower().startswith("error"):
            return REDACT(line)
    return REDACT(lines[-1]) if lines else "(no output)"


@dataclass
class Runner:
    """Runs commands locally. One per task invocation; ``dry_run`` comes from the task's flags."""

    dry_run: bool = False
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    retry_base_seconds: float = 0.5
    # Prefix echoed lines with this (remote runs name their host here).
    label: str = ""

    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        mutates: bool = True,
        check: bool = True,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        retries: int = 0,
        stream: Callable[[str], None] | None = None,
        hint: str | None = None,
        quiet: bool = False,
    ) -> Completed:
        """Run ``argv``; see the module docstring for the contract.

        ``mutates=False`` marks a read: it runs even in dry-run (plans need the current state) and may be
        retried with backoff. Mutating calls are never retried: a half-applied change must be looked at.
        ``stream`` receives each output line as it arrives (long builds, logs).
        """
        argv = tuple(str(a) for a in argv)
        if retries and mutates:
            raise ValueError("mutating commands are never retried")
        shown = display(argv) + (" < stdin" if stdin is not None else "")
        if self.dry_run and mutates:
            console.say(f"{self.label}[dry-run] would run: {shown}")
            return Completed(argv, 0, dry_run=True)
        attempt = 0
        while True:
            if not quiet:
                console.note(f"{self.label}$ {shown}")
            result = self._spawn(argv, stdin, timeout, env, cwd, stream, hint)
            if result.returncode == 0 or not check:
                return result
            if attempt >= retries:
                raise NixflyError(
                    f"`{display(argv[:3])}…` failed (exit {result.returncode}): "
                    f"{failure_line(result.stderr, result.stdout)}",
                    hint,
                    exit_code=1,
                )
            delay = self.retry_base_seconds * 2**attempt
            console.warn(f"{display(argv[:3])} failed (exit {result.returncode}); retrying in {delay:.1f}s")
            time.sleep(delay)
            attempt += 1

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
        """Start a child in its own session (so ``stop`` can end its whole process group) with piped output.

        ``run`` uses it for commands that finish; long-running ones (``inv dev``) use it directly.
        """
        try:
            return subprocess.Popen(
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
            raise NixflyError(
                f"{argv[0]}: command not found", hint or f"install {argv[0]} or put it on PATH"
            ) from None
        except PermissionError:
            raise NixflyError(f"{argv[0]}: not executable", hint) from None

    def _spawn(
        self,
        argv: tuple[str, ...],
        stdin: str | None,
        timeout: float | None,
        env: Mapping[str, str] | None,
        cwd: Path | None,
        stream: Callable[[str], None] | None,
        hint: str | None,
    ) -> Completed:
        started = time.monotonic()
        proc = self.start(argv, stdin=stdin is not None, env=env, cwd=cwd, hint=hint)
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
            raise NixflyError(
                f"`{display(argv[:3])}…` did not finish within {timeout:g}s and was stopped", hint
            ) from None
        except BaseException:
            # Ctrl-C or any error here: the child must not outlive us.
            stop(proc)
            raise
        for reader in readers:
            reader.join()
        return Completed(argv, proc.returncode, "".join(out), "".join(err), time.monotonic() - started)


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


def stop(proc: subprocess.Popen[str], grace: float = GRACE_SECONDS) -> None:
    """Stop a child started by ``Runner``, and its whole process group: TERM, then KILL after ``grace``."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
