"""`inv dev` with the real toolchains: mix runs web, bun runs the ai-server, output is prefixed, Ctrl-C stops
both and leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from contextlib import suppress
from secrets import token_hex

from helpers import procs
from helpers.procs import free_port, wait_until
from helpers.project import require


def health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return json.loads(response.read())
    except OSError:
        return None


def test_dev_runs_both_apps_and_ctrl_c_stops_them(project):
    require("mix")
    require("bun")
    web_port, ai_port = free_port(), free_port()
    # Everything this run starts inherits the mark, so a failed run leaves nothing behind (mix and bun run
    # in sessions of their own: killing `inv` alone would not reach them).
    mark = f"NIXFLY_TEST_RUN={token_hex(6)}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "dev", "--web-port", str(web_port), "--ai-port", str(ai_port)],
        cwd=project.root,
        env={**project.env, **dict([mark.split("=", 1)])},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def web_sees_the_ai_server() -> bool:
            assert proc.poll() is None, proc.communicate()
            body = health(web_port)
            return bool(body and body.get("ai_server") == "reachable")

        wait_until(web_sees_the_ai_server, 180, "web to see the ai-server", every=0.2)
        assert health(ai_port)["status"] == "ok"
        children = [p.pid for p in procs.children(proc.pid)]
        assert len(children) == 2
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "[web]" in out and "[ai-server]" in out
        for child in children:
            wait_until(lambda child=child: not procs.running(child), 15, f"child {child} to stop")
            assert procs.session(child) == []
        assert health(web_port) is None and health(ai_port) is None
    finally:
        # Only after the checks above: a failed run leaves nothing running for the next test.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for left in procs.marked(mark):
            with suppress(ProcessLookupError):
                os.kill(left.pid, signal.SIGKILL)
