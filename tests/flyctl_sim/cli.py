"""Entry point of the simulated ``flyctl``/``fly``: parse like cobra, apply faults, run, record the call."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import traceback
from functools import cache
from pathlib import Path
from typing import Any

from flyctl_sim import cobra, faults, session
from flyctl_sim.cobra import BOOL, Args, Command, Flag
from flyctl_sim.commands import (
    apps,
    auth,
    deploy,
    logs,
    machines,
    platform,
    releases,
    scale,
    secrets,
    volumes,
)
from flyctl_sim.errors import FlyError, HelpRequested
from flyctl_sim.invocation import Invocation, Stdin
from flyctl_sim.state import HOME_ENV, append_call_unlocked, locked, transaction

LATENCY_ENV = "FLYCTL_SIM_LATENCY"
EXIT_CANCELLED = 127
EXIT_PANIC = 3


def _run_help(inv: Invocation) -> None:
    command = root()
    for word in inv.args:
        child = command.find_child(word)
        if child is None:
            inv.print(f'Unknown help topic "{" ".join(inv.args)}"')
            break
        command = child
    inv.out.write(cobra.help_text(command))


@cache
def root() -> Command:
    """The command tree (built once per process)."""
    tree = Command(
        "flyctl",
        "The Fly.io command line interface",
        persistent=(
            Flag("access-token", shorthand="t", usage="Fly API Access Token"),
            Flag("verbose", BOOL, usage="Verbose output"),
            Flag("debug", BOOL, usage="Print additional logs and traces"),
        ),
    )
    tree.add(
        apps.command(),
        machines.status_command(),
        volumes.command(),
        secrets.command(),
        deploy.command(),
        scale.command(),
        platform.command(),
        releases.command(),
        logs.command(),
        machines.machine_command(),
        machines.checks_command(),
        auth.auth_command(),
        auth.tokens_command(),
        auth.version_command(),
        Command(
            "help",
            "Help about any command",
            usage="[command]",
            args=Args(0, None),
            run=_run_help,
            needs_auth=False,
        ),
    )
    return tree


def canonical(path: str) -> str:
    """``volume ls`` -> ``volumes list``; words that are not commands (or globs) are kept as given."""
    command, out = root(), []
    for word in path.split():
        child = command.find_child(word)
        if child is None:
            out.append(word)
            command = Command(word)
        else:
            out.append(child.name)
            command = child
    return " ".join(out)


def latency(state: dict[str, Any]) -> float:
    """Seconds every parsed invocation waits before answering (an API round trip): ``FLYCTL_SIM_LATENCY``
    when set, else ``control.set_latency``. Parse errors and --help answer at once (no API call)."""
    text = os.environ.get(LATENCY_ENV, "")
    if text:
        try:
            return max(float(text), 0.0)
        except ValueError:
            return 0.0
    return float(state.get("latency", 0.0) or 0.0)


def _execute(argv: list[str], home: Path, record: dict[str, Any], stdin: Stdin) -> int:
    out, err = sys.stdout, sys.stderr
    try:
        parsed = cobra.parse(root(), argv[1:])
    except HelpRequested as help_:
        out.write(str(help_))
        return 0
    except FlyError as exc:
        err.write(exc.render())
        return exc.exit_code
    command_path = parsed.command.canonical()
    record["command"] = command_path

    with transaction(home) as state:
        fault, delay = faults.take(state, command_path)
        delay += latency(state)
    if delay > 0:
        # Slept WITHOUT the state lock: a slow flyctl must not stall other runs, the health server or the
        # test's control calls. The command's own work below runs entirely under the lock.
        time.sleep(delay)
    if fault is not None and not fault.get("after_effect"):
        err.write(faults.message_text(fault))
        return int(fault["exit_code"])

    error: FlyError | None = None
    continuation = None
    with transaction(home) as state:
        inv = Invocation(
            parsed=parsed,
            prog=os.path.basename(argv[0]) or "flyctl",
            env=dict(os.environ),
            cwd=Path.cwd(),
            home=home,
            state=state,
            out=out,
            err=err,
            stdin=stdin,
        )
        try:
            if parsed.command.needs_auth:
                session.require_session(inv)
            assert parsed.command.run is not None
            continuation = parsed.command.run(inv)
        except FlyError as exc:
            error = exc  # effects made before a failure stay (the "server" already applied them)
    out.flush()
    if error is not None:
        err.write(error.render())
        return error.exit_code
    if continuation is not None:
        code = continuation()
        if code:
            return code
    if fault is not None:  # after_effect: the command did its work, then flyctl failed anyway
        err.write(faults.message_text(fault))
        return int(fault["exit_code"])
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(encoding="utf-8", errors="surrogateescape")  # Go writes raw UTF-8 bytes
    # flyctl catches SIGINT (signal.NotifyContext) even when started with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    home_env = os.environ.get(HOME_ENV, "")
    if not home_env:
        sys.stderr.write(f"flyctl simulator: {HOME_ENV} is not set\n")
        return 1
    home = Path(home_env)
    record: dict[str, Any] = {
        "argv": argv[1:],
        "prog": os.path.basename(argv[0]),
        "cwd": os.getcwd(),
        "stdin_bytes": 0,
        "exit": None,
        "ts": time.time(),
        "command": None,
    }
    stdin = Stdin(getattr(sys.stdin, "buffer", None))
    code = EXIT_CANCELLED
    try:
        code = _execute(argv, home, record, stdin)
    except KeyboardInterrupt:
        code = EXIT_CANCELLED
    except BrokenPipeError:
        # the reader went away (`flyctl logs | head`); stop quietly like a Go program killed by SIGPIPE
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    except Exception:  # a simulator bug: report it like a Go panic (exit 3)
        sys.stderr.write("panic: flyctl simulator crashed\n" + traceback.format_exc())
        code = EXIT_PANIC
    finally:
        record["exit"] = code
        record["stdin_bytes"] = stdin.consumed  # the COUNT only: stdin carries secret values
        record["duration"] = round(time.time() - record["ts"], 3)
        with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
            sys.stdout.flush()
        try:
            with locked(home):
                append_call_unlocked(home, record)
        except KeyboardInterrupt:
            pass
    return code
