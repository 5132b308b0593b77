"""Errors a user can act on, and the few kinds code needs to tell apart.

Code decides by type, never by matching a message's text: ``CommandError.kind`` says whether a command
failed, timed out or was not found; only the tool modules (``flyctl``, ``nix``, ``skopeo``) read a tool's
own output to raise something more specific. Recovery that ran after a failure is added as a note
(``add_note``), so the original message stays what it was.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Literal

# A distinct exit code for "nixfly itself is broken" (BSD's EX_SOFTWARE), so CI can tell it from a failure
# the user can fix (1) and an interruption (130).
BUG_EXIT = 70
INTERRUPTED_EXIT = 130

CommandFailure = Literal["failed", "timed out", "not found"]
# How much of a value a user typed an error message repeats: enough to recognise it, never a page.
BRIEF_LIMIT = 60


def brief(value: object) -> str:
    """``repr(value)`` for a message, cut to about ``BRIEF_LIMIT`` characters: a 100 KB flag is not echoed
    whole."""
    shown = repr(value)
    return shown if len(shown) <= BRIEF_LIMIT else f"{shown[: BRIEF_LIMIT - 12]}…({len(str(value))} chars)"


class NixflyError(Exception):
    """Something failed in a way the user can fix: what failed, and what to do next.

    Tasks turn it into one line on stderr and a non-zero exit, never a traceback. Messages must never hold a
    secret value: build them from names, paths and exit codes only.
    """

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    @property
    def notes(self) -> list[str]:
        """What happened after the failure (a rollback, what is live now), in order."""
        return list(getattr(self, "__notes__", []))

    def line(self) -> str:
        """The message and its notes, as the one line a user reads."""
        return "; ".join([self.message, *self.notes])

    def __str__(self) -> str:
        return f"{self.line()} — {self.hint}" if self.hint else self.line()


class CommandError(NixflyError):
    """An external command that failed, timed out or could not be started."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        kind: CommandFailure,
        argv: Sequence[str],
        returncode: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message, hint)
        self.kind: CommandFailure = kind
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr


class WriteError(NixflyError):
    """A file of this machine could not be written (a full or read-only disk): nixfly's own records, never
    the release. A deploy never rolls a release back for it."""

    def __init__(self, message: str, hint: str | None = None, *, path: str) -> None:
        super().__init__(message, hint)
        self.path = path


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``kill``, a closed terminal, CI cancelling a job), raised where a Ctrl-C would
    raise ``KeyboardInterrupt``: being its subclass, every path that handles a Ctrl-C (children stopped,
    lock released, summary, how to go back) handles these too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interrupt_exit(exc: BaseException) -> int:
    """The exit code of a run ended by ``exc``: 130 for Ctrl-C, 128 + the signal's number for a ``Stopped``
    (143 for TERM, 129 for HUP), as a shell reports a program that signal ended."""
    return 128 + exc.signum if isinstance(exc, Stopped) else INTERRUPTED_EXIT


def interrupt_name(exc: BaseException) -> str:
    """What stopped the run, for messages: "Ctrl-C", "SIGTERM" or "SIGHUP"."""
    return signal.Signals(exc.signum).name if isinstance(exc, Stopped) else "Ctrl-C"


class Interrupted(NixflyError):
    """A Ctrl-C, SIGTERM or SIGHUP (``cause``) stopped a step; carries where it happened."""

    def __init__(self, where: str, hint: str | None = None, *, cause: BaseException | None = None) -> None:
        by = "" if cause is None or not isinstance(cause, Stopped) else f" by {interrupt_name(cause)}"
        super().__init__(
            f"interrupted{by} during {where}",
            hint,
            exit_code=INTERRUPTED_EXIT if cause is None else interrupt_exit(cause),
        )
        self.by = "Ctrl-C" if cause is None else interrupt_name(cause)
