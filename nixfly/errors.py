"""Errors a user can act on."""

from __future__ import annotations


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

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class Interrupted(NixflyError):
    """The user pressed Ctrl-C; carries where it happened."""

    def __init__(self, where: str, hint: str | None = None) -> None:
        super().__init__(f"interrupted during {where}", hint, exit_code=130)
