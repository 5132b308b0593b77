"""The error type every simulated command raises to fail the way flyctl fails."""

from __future__ import annotations


class FlyError(Exception):
    """A flyctl failure: printed as ``Error: <message>`` on stderr, then exit ``exit_code``.

    ``details`` are lines flyctl prints to stderr before the ``Error:`` line (validation reports, hints).
    """

    def __init__(self, message: str, exit_code: int = 1, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.details = details

    def render(self) -> str:
        lines = [*self.details, f"Error: {self.message}"]
        return "\n".join(lines) + "\n"


class HelpRequested(Exception):
    """``-h/--help`` or a bare command group: print help on stdout and exit 0."""
