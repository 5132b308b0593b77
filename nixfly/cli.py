"""The seam between Invoke and the package: errors become one line and an exit code, flags become Settings."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke import Context, Exit

from nixfly.config import Settings, resolve
from nixfly.errors import NixflyError

F = TypeVar("F", bound=Callable[..., Any])


def clean_exit(fn: F) -> F:
    """Run a task body; a ``NixflyError`` or Ctrl-C ends it with one clear line and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NixflyError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit(
                "error: interrupted; nothing half-written was left behind. Run the task again.", 130
            ) from None

    return wrapper  # type: ignore[return-value]


def settings(c: Context, root: Path, **flags: Any) -> Settings:
    """Settings for a task: its flags, then ``nixfly`` config (invoke.yaml), then the built-in defaults.

    Invoke's own ``--dry`` counts as ``--dry-run`` too.
    """
    nixfly_config = c.config.get("nixfly") if hasattr(c, "config") else None
    dry = bool(flags.pop("dry_run", False)) or bool(c.config.run.get("dry", False))
    return resolve(nixfly_config, root, dry_run=dry, **{k: v for k, v in flags.items() if v is not None})


def print_json(data: Any) -> None:
    import json

    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
