"""Everything nixfly prints for people: to stderr, coloured on a terminal, plain elsewhere.

Diagnostics go to stderr so stdout stays free for machine output (``--json``). rich is imported lazily:
``inv --list`` imports tasks.py and must stay fast.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def in_ci() -> bool:
    """True under CI (GitHub Actions or any runner that sets ``CI``): no prompts, no spinners."""
    return bool(os.environ.get("CI") or os.environ.get("GITHUB_ACTIONS"))


def fancy() -> bool:
    """Spinners and colour only for a person at a terminal."""
    return (
        sys.stderr.isatty()
        and not in_ci()
        and "NO_COLOR" not in os.environ
        and os.environ.get("TERM", "") != "dumb"
    )


@cache
def stderr() -> Console:
    from rich.console import Console

    # highlight=False: rich would otherwise colour numbers and paths inside our messages.
    return Console(
        stderr=True,
        highlight=False,
        no_color=not fancy(),
        force_terminal=fancy(),
        soft_wrap=True,
        width=None if fancy() else 120,
    )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def say(message: str) -> None:
    """A normal progress line."""
    stderr().print(_escape(message))


def note(message: str) -> None:
    """A quieter line (commands being run, skipped work)."""
    stderr().print(_escape(message), style="dim")


def warn(message: str) -> None:
    stderr().print(f"warning: {_escape(message)}", style="yellow")


def error(message: str) -> None:
    stderr().print(f"error: {_escape(message)}", style="bold red")


def ok(message: str) -> None:
    stderr().print(_escape(message), style="green")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table on stderr; plain ASCII borders off a terminal so CI logs stay readable."""
    from rich import box
    from rich.table import Table

    t = Table(title=title, box=box.ROUNDED if fancy() else box.ASCII, title_justify="left")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*(_escape(str(cell)) for cell in row))
    stderr().print(t)


@contextmanager
def progress(label: str) -> Iterator[None]:
    """Show that a long step is running: a spinner on a terminal, a start line elsewhere."""
    if fancy():
        started = time.monotonic()
        with stderr().status(_escape(label)):
            yield
        note(f"✓ {label} ({time.monotonic() - started:.1f}s)")
    else:
        # CI logs: one line per step; the summary table carries the times.
        say(f"→ {label}")
        yield


# Whether this run printed its JSON document (``print_json``): ``--json`` prints exactly one.
_JSON_PRINTED = False


def print_json(data: Any) -> None:
    """The run's one JSON document, on stdout (machine output; everything else goes to stderr)."""
    import json

    global _JSON_PRINTED
    _JSON_PRINTED = True
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    sys.stdout.flush()


def json_printed() -> bool:
    return _JSON_PRINTED
