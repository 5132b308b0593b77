"""``inv dev``: web (mix) and ai-server (bun --watch) side by side, output prefixed; Ctrl-C stops both."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from nixfly import console
from nixfly.futures import SIGNAL_POLL
from nixfly.runner import Runner, display, stop


def processes(root: Path, web_port: int, ai_port: int) -> list[tuple[str, list[str], Path, dict[str, str]]]:
    return [
        (
            "ai-server",
            ["bun", "run", "dev"],
            root / "ai-server",
            {"PORT": str(ai_port)},
        ),
        (
            "web",
            ["mix", "run", "--no-halt"],
            root / "web",
            {"PORT": str(web_port), "AI_SERVER_URL": f"http://127.0.0.1:{ai_port}"},
        ),
    ]


def _prefix(name: str, pipe: object) -> None:
    for line in pipe:  # type: ignore[attr-defined]
        sys.stdout.write(f"[{name}] {line}")
        sys.stdout.flush()


def _signal_exit(proc: subprocess.Popen[str], done: threading.Event) -> None:
    proc.wait()
    done.set()


def install_deps(runner: Runner, root: Path) -> None:
    """The ai-server's node_modules exactly as bun.lock pins them, as the Nix build has them."""
    runner.run(
        ["bun", "install", "--frozen-lockfile"],
        cwd=root / "ai-server",
        hint="bun.lock must match package.json: run `bun install` in ai-server/ and `inv deps.update`",
    )


def run(runner: Runner, root: Path, web_port: int, ai_port: int) -> int:
    """Start both; when either exits or Ctrl-C arrives, stop the other. Returns the exit code."""
    install_deps(runner, root)
    specs = processes(root, web_port, ai_port)
    if runner.dry_run:
        for name, argv, cwd, _ in specs:
            console.say(f"[dry-run] would run in {cwd.name}/: {display(argv)}  ({name})")
        return 0
    children: list[tuple[str, subprocess.Popen[str]]] = []
    done = threading.Event()
    try:
        for name, argv, cwd, env in specs:
            console.note(f"$ (cd {cwd.name} && {display(argv)})")
            proc = runner.start(
                argv,
                cwd=cwd,
                env=env,
                merge_stderr=True,
                hint="enter the dev shell (`nix develop`) or install it",
            )
            children.append((name, proc))
            threading.Thread(target=_prefix, args=(name, proc.stdout), daemon=True).start()
            threading.Thread(target=_signal_exit, args=(proc, done), daemon=True).start()
        console.say(
            f"web on http://127.0.0.1:{web_port}, ai-server on http://127.0.0.1:{ai_port}; Ctrl-C stops both"
        )
        while not done.wait(SIGNAL_POLL):  # in slices: one unbounded wait can sleep through a Ctrl-C
            pass
        failed = [(n, p.returncode) for n, p in children if p.poll() is not None]
        name, code = failed[0]
        console.warn(f"{name} exited with {code}; stopping the other")
        return code or 1
    except KeyboardInterrupt:
        console.say("stopping…")
        return 130
    finally:
        # SIGINT first: mix and bun both treat it as a normal stop.
        for _, proc in children:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
        for _, proc in children:
            stop(proc)
