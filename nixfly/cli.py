"""The seam between Invoke and the package: flags become checked values and Settings, and every way a task
can end becomes one line and an exit code (1 for what the user can fix, 130 for Ctrl-C, ``BUG_EXIT`` for
nixfly's own bugs, with the traceback in a file) — never a traceback on the terminal.

Numeric flags are declared as text and converted here: Invoke's own conversion of ``--port abc`` would end in
a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from invoke import Exit

from nixfly.errors import INTERRUPTED_EXIT, NixflyError

if TYPE_CHECKING:
    # tasks.py imports this module to decorate its tasks: what a task body needs is imported when it runs,
    # so `inv --list` loads neither the config checks nor the runner.
    from invoke import Context

    from nixfly.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


def clean_exit(fn: F) -> F:
    """Run a task body; whatever happens, end with one clear line and the right exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NixflyError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            from nixfly.runner import stop_all

            stop_all()
            raise Exit(
                "error: interrupted; nothing half-written was left behind. Run the task again.",
                INTERRUPTED_EXIT,
            ) from None
        except Exit:
            raise
        except Exception as exc:
            from nixfly.pipeline import bug_report

            report = bug_report(f"`inv {fn.__name__.replace('_', '.', 1)}`", exc)
            raise Exit(f"error: {report}", code=report.exit_code) from None

    return wrapper  # type: ignore[return-value]


def settings(c: Context, root: Path, **flags: Any) -> Settings:
    """Settings for a task: its flags, then ``nixfly`` config (invoke.yaml), then the built-in defaults.

    Invoke's own ``--dry`` counts as ``--dry-run`` too.
    """
    from nixfly.config import resolve

    nixfly_config = c.config.get("nixfly") if hasattr(c, "config") else None
    dry = bool(flags.pop("dry_run", False)) or bool(c.config.run.get("dry", False))
    return resolve(nixfly_config, root, dry_run=dry, **{k: v for k, v in flags.items() if v is not None})


def whole(flag: str, text: str | int, *, low: int = 0, high: int | None = None) -> int:
    """``--flag N`` as a whole number in [low, high]; "" (not given) is ``low``."""
    if text in ("", None):
        return low
    try:
        value = int(str(text).strip(), 10)
    except ValueError:
        raise NixflyError(
            f"--{flag} {text!r} is not a whole number", f"e.g. --{flag} {max(low, 1)}"
        ) from None
    if value < low or (high is not None and value > high):
        upper = f" and at most {high}" if high is not None else ""
        raise NixflyError(f"--{flag} {value} is out of range", f"use at least {low}{upper}")
    return value


def seconds(flag: str, text: str | float, default: float) -> float:
    """``--flag S`` as a positive number of seconds; "" (not given) is ``default``."""
    if text in ("", None):
        return default
    try:
        value = float(str(text).strip())
    except ValueError:
        raise NixflyError(f"--{flag} {text!r} is not a number of seconds", f"e.g. --{flag} 15") from None
    if not 0 < value <= 86400:
        raise NixflyError(f"--{flag} {value:g} is out of range", "use more than 0 and at most 86400 seconds")
    return value


def print_json(data: Any) -> None:
    import json

    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
