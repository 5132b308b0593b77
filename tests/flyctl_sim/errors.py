"""The error type every simulated command raises to fail the way flyctl fails."""

from __future__ import annotations


class FlyError(Exception):
    """A flyctl failure: printed on stderr, then exit ``exit_code``.

    flyctl ``internal/cli/cli.go`` ``printError``: ``Error: <message>``, then the error's description and its
    suggestion (``flyerr.GenericErr`` ``Descript``/``Suggest``), each followed by an empty line. ``details``
    are lines printed to stderr BEFORE the ``Error:`` line (hints some commands print first).
    """

    def __init__(
        self,
        message: str,
        exit_code: int = 1,
        details: tuple[str, ...] = (),
        *,
        description: str = "",
        suggestion: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.details = details
        self.description = description
        self.suggestion = suggestion

    def render(self) -> str:
        lines = [*self.details, f"Error: {self.message}"]
        if self.description and self.description != self.message:
            lines += [self.description, ""]
        if self.suggestion:
            lines += [self.suggestion, ""]
        return "\n".join(lines) + "\n"


class HelpRequested(Exception):
    """``-h/--help`` or a bare command group: print help on stdout and exit 0."""
