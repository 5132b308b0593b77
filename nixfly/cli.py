"""The seam between Invoke and the package: flags become checked values and Settings, and every way a task
can end becomes one line and an exit code (1 for what the user can fix, 130 for Ctrl-C, ``BUG_EXIT`` for
nixfly's own bugs, with the traceback in a file) — never a traceback on the terminal.

Numeric flags are declared as text and converted here: Invoke's own conversion of ``--port abc`` would end in
a traceback. Invoke reads invoke.yaml itself, after tasks.py and outside any task, so ``guard`` (called when
tasks.py is imported) checks that file first, and turns anything that still escapes Invoke into the same one
line and exit code a task would give.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from invoke import Exit

from nixfly.errors import NixflyError, Stopped, brief, interrupt_exit

if TYPE_CHECKING:
    # tasks.py imports this module to decorate its tasks: what a task body needs is imported when it runs,
    # so `inv --list` loads neither the config checks nor the runner.
    from invoke import Context

    from nixfly.config import Settings

F = TypeVar("F", bound=Callable[..., Any])
# 128 + SIGPIPE: what a shell reports for a program whose output pipe closed under it.
SIGPIPE_EXIT = 141


def lazy_module(name: str) -> ModuleType:
    """The module ``name``, executed at its first attribute access (importlib's LazyLoader): tasks.py's
    bodies call into it, and `inv --list` runs no body, so it need not load them."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        # What `import a.b` does too: `a.b` is then an attribute of `a`, not only a key of sys.modules.
        setattr(sys.modules[parent], child, module)
    return module


def clean_exit(fn: F) -> F:
    """Run a task body; whatever happens, end with one clear line and the right exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from nixfly.pipeline import bug_report

        try:
            return fn(*args, **kwargs)
        except NixflyError as exc:
            _json_error(kwargs, exc.message, exc.hint, exc.exit_code, exc.notes)
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt as exc:
            from nixfly.runner import stop_all

            stop_all()
            message = "interrupted; nothing half-written was left behind. Run the task again."
            _json_error(kwargs, message, None, interrupt_exit(exc))
            raise Exit(f"error: {message}", interrupt_exit(exc)) from None
        except Exit:
            raise
        except BrokenPipeError:
            _reader_went_away()
        except Exception as exc:
            report = bug_report(f"`inv {fn.__name__.replace('_', '.', 1)}`", exc)
            _json_error(kwargs, report.message, report.hint, report.exit_code)
            raise Exit(f"error: {report}", code=report.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _json_error(
    flags: Mapping[str, Any], message: str, hint: str | None, code: int, notes: list[str] | None = None
) -> None:
    """With ``--json``, a task that ends before its own document (bad input, a failed read) prints one
    saying so: a consumer of ``--json`` always gets exactly one JSON document."""
    from nixfly import console

    if flags.get("json") and not console.json_printed():
        console.print_json(
            {"ok": False, "error": message, "hint": hint or "", "notes": notes or [], "exit_code": code}
        )


def guard(root: Path) -> None:
    """At tasks.py import: refuse a project config Invoke would crash on, and catch what escapes Invoke."""
    _reopen_closed_std_streams()
    sys.excepthook = _last_resort
    atexit.register(_flush_stdout)
    handle_stop_signals()
    try:
        check_invoke_files(root)
    except NixflyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


# How alike (difflib's ratio) a top-level key must be to "nixfly" to be taken for a typo of it: "nixfy",
# "nixfyl" and "Nixfly" are; "nix" (0.67) is not, a project may have a section of that name.
NEAR_NIXFLY = 0.75
# Invoke's project config files, in the order it looks for them (the first found is read).
PROJECT_CONFIGS = ("invoke.yaml", "invoke.yml", "invoke.json", "invoke.py")


def check_invoke_files(root: Path) -> None:
    """The project's invoke.yaml/.yml as Invoke will read it: UTF-8 YAML, a mapping, text keys, and no value
    whose shape differs from Invoke's own setting of that name (its merge would raise)."""
    found = next((root / name for name in PROJECT_CONFIGS if os.path.lexists(root / name)), None)
    if found is None or found.suffix not in (".yaml", ".yml"):
        return
    # Imported only when there is a file to check: `inv --list` pays for nothing it does not use.
    from invoke import Config
    from invoke.util import yaml

    from nixfly.files import read_bytes

    fix = f"fix {found.name} (nixfly's settings go under `nixfly:`)"
    try:
        data = yaml.safe_load(read_bytes(found, fix).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise NixflyError(
            f"{found.name} is not UTF-8 text (invalid byte at offset {exc.start})", fix
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise NixflyError(f"{found.name} is not valid YAML: {problem}{where}", fix) from None
    if data is None:
        return
    if not isinstance(data, dict):
        raise NixflyError(f"{found.name} must be a mapping of settings, not {type(data).__name__}", fix)
    _check_keys(found.name, data, Config.global_defaults(), "", fix)
    _check_nixfly_spelling(found.name, data, Config.global_defaults())


def _check_nixfly_spelling(name: str, data: Mapping[Any, Any], invoke_keys: Mapping[str, Any]) -> None:
    """A top-level key that is neither Invoke's nor ``nixfly`` but nearly spelled ``nixfly`` (``nixfy:``,
    ``Nixfly:``) is a typo: its settings would be ignored and the deploy run with the defaults."""
    import difflib

    for key in data:
        if key == "nixfly" or key in invoke_keys or not isinstance(key, str):
            continue
        if difflib.get_close_matches(key.lower(), ["nixfly"], n=1, cutoff=NEAR_NIXFLY):
            raise NixflyError(
                f"{name}: the top-level key `{key}` is not one nixfly or Invoke reads",
                "did you mean `nixfly`?",
            )


def _check_keys(name: str, data: Mapping[Any, Any], defaults: Any, where: str, fix: str) -> None:
    for key, value in data.items():
        path = f"{where}{key}"
        if not isinstance(key, str):
            raise NixflyError(
                f"{name}: the key {brief(key)} under {where.rstrip('.') or 'the top'} must be text", fix
            )
        known = isinstance(defaults, dict) and key in defaults
        default = defaults[key] if known else None
        if known and isinstance(default, dict) != isinstance(value, dict):
            what = "a mapping" if isinstance(default, dict) else "a single value"
            raise NixflyError(f"{name}: `{path}` must be {what} (Invoke's own setting)", fix)
        if isinstance(value, dict):
            _check_keys(name, value, default, f"{path}.", fix)


def _raise_stopped(signum: int, _frame: object) -> None:
    raise Stopped(signum)


def handle_stop_signals() -> None:
    """Make SIGTERM and SIGHUP do what Ctrl-C does (raise ``Stopped``, a ``KeyboardInterrupt``): children
    stopped, lock released, a summary and how to go back, instead of dying at once with all of them left.

    A signal the parent process set to be ignored (``nohup``, ``trap '' TERM``) stays ignored: that was
    the user's choice. Called from ``guard``, at tasks.py's import, in the main thread.
    """
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _raise_stopped)


def _reopen_closed_std_streams() -> None:
    """``inv … >&-``: a closed stdin, stdout or stderr becomes /dev/null.

    Python leaves ``sys.stdout`` None then, so the first JSON document or store path printed would be a
    crash (a bug report after a deploy that succeeded); worse, the next file nixfly opens would get fd 1
    and receive whatever is printed. Output to a closed stream is lost, as the user chose; a warning on
    stderr (when that is open) says so.
    """
    closed = []
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", encoding="utf-8", closefd=False))  # noqa: SIM115
            closed.append(name)
    if "stdout" in closed and "stderr" not in closed:
        print(
            "warning: stdout is closed: what nixfly prints there (--json, store paths) is lost",
            file=sys.stderr,
        )


def _last_resort(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """sys.excepthook: whatever escaped Invoke (its own config, the environment) as one line, never a
    traceback: exit 130 for Ctrl-C, else a bug report."""
    from nixfly.pipeline import bug_report

    if isinstance(exc, BrokenPipeError):
        _reader_went_away()
    if isinstance(exc, KeyboardInterrupt):
        from nixfly.runner import stop_all

        stop_all()
        print("error: interrupted", file=sys.stderr)
        code = interrupt_exit(exc)
    elif isinstance(exc, _invoke_config_errors()):
        # A config file nixfly did not check (-f FILE, ~/.invoke.yaml, /etc/invoke.yaml) or an INVOKE_*
        # variable: the user's to fix, not nixfly's bug. Invoke's own message can print whole dicts.
        print(
            f"error: Invoke could not load its configuration ({type(exc).__name__}: "
            f"{brief(str(exc).splitlines()[0] if str(exc) else '')[1:-1]}) — check the file -f names, "
            "~/.invoke.yaml, /etc/invoke.yaml and INVOKE_* variables",
            file=sys.stderr,
        )
        code = 1
    else:
        report = bug_report("`inv` (outside any task)", exc.with_traceback(tb))
        print(f"error: {report}", file=sys.stderr)
        code = report.exit_code
    sys.stdout.flush()
    sys.stderr.flush()
    # An excepthook cannot set the exit status by raising: Python would print both exceptions.
    os._exit(code)


def _flush_stdout() -> None:
    """At exit, before Python's own flush: a reader that closed stdout (`inv … | head`), whether the output
    was a task's or Invoke's (`--list`), ends quietly here instead of as "Exception ignored … Broken pipe"."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_went_away()


def _reader_went_away() -> None:
    """stdout's reader closed it (``inv … | head``): not a failure of nixfly's. End quietly, as a program
    killed by SIGPIPE would (exit 141), without another write to the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os._exit(SIGPIPE_EXIT)


def _invoke_config_errors() -> tuple[type[BaseException], ...]:
    from invoke.config import AmbiguousMergeError
    from invoke.exceptions import AmbiguousEnvVar, UncastableEnvVar, UnknownFileType
    from invoke.util import yaml

    return (AmbiguousMergeError, AmbiguousEnvVar, UncastableEnvVar, UnknownFileType, yaml.YAMLError)


def settings(c: Context, root: Path, **flags: Any) -> Settings:
    """Settings for a task: its flags, then ``nixfly`` config (invoke.yaml), then the built-in defaults.

    Invoke's own ``--dry`` counts as ``--dry-run`` too.
    """
    from nixfly.config import resolve
    from nixfly.runner import set_limits

    nixfly_config = c.config.get("nixfly") if hasattr(c, "config") else None
    dry = bool(flags.pop("dry_run", False)) or bool(c.config.run.get("dry", False))
    resolved = resolve(nixfly_config, root, dry_run=dry, **{k: v for k, v in flags.items() if v is not None})
    # Every command the task runs, through whichever runner, is bounded by the project's limits.
    set_limits(resolved.timeouts)
    return resolved


def state_dir(c: Context, root: Path) -> Path:
    """``nixfly.state_dir`` of invoke.yaml, for tasks that must work when what is there is wrong."""
    from nixfly.config import state_dir as configured

    return configured(c.config.get("nixfly"), root)


def whole(flag: str, text: str | int, *, low: int = 0, high: int | None = None) -> int:
    """``--flag N`` as a whole number in [low, high]; "" (not given) is ``low``."""
    if text in ("", None):
        return low
    # ASCII digits only: int() would also take "1_000", " 5\n" and other scripts' digits.
    if not isinstance(text, int) and not re.fullmatch(r"-?[0-9]{1,18}", str(text), re.ASCII):
        raise NixflyError(f"--{flag} {brief(text)} is not a whole number", f"e.g. --{flag} {max(low, 1)}")
    value = int(text)
    if value < low or (high is not None and value > high):
        upper = f" and at most {high}" if high is not None else ""
        raise NixflyError(f"--{flag} {value} is out of range", f"use at least {low}{upper}")
    return value


def seconds(flag: str, text: str | float, default: float) -> float:
    """``--flag S`` as a positive number of seconds; "" (not given) is ``default``."""
    if text in ("", None):
        return default
    # Plain decimals: float() would also take "inf", "nan", "1e3" and "1_0".
    if not isinstance(text, float | int) and not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9})?", str(text)):
        raise NixflyError(f"--{flag} {brief(text)} is not a number of seconds", f"e.g. --{flag} 15")
    value = float(text)
    if not 0 < value <= 86400:
        raise NixflyError(f"--{flag} {value:g} is out of range", "use more than 0 and at most 86400 seconds")
    return value
