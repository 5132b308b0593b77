"""The built closure does what Fly will ask of it: serve, talk over localhost, stop cleanly."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.procs import free_port
from helpers.smoke import Service, answer_or_none, request, wait_until

STARTUP_SECONDS = 60
GRACE_SECONDS = 10


def wait_healthy(port: int, want: Callable[[dict], bool] = lambda _: True) -> dict:
    def check() -> dict | None:
        reply = answer_or_none(f"http://127.0.0.1:{port}/health")
        if reply is None or reply.status != 200:
            return None
        body = reply.json()
        return body if want(body) else None

    return wait_until(check, STARTUP_SECONDS, f"/health on port {port}")  # type: ignore[return-value]


def start_oneshot(
    launch: Callable[..., Service], result: Path, data_dir: Path, **env: str
) -> tuple[Service, int, int]:
    web_port, ai_port = free_port(), free_port()
    service = launch(
        [str(result / "bin" / "start-oneshot")],
        WEB_PORT=str(web_port),
        AI_SERVER_PORT=str(ai_port),
        DATA_DIR=str(data_dir),
        AI_PROVIDER="echo",
        ONESHOT_GRACE_SECONDS=str(GRACE_SECONDS),
        **env,
    )
    wait_healthy(web_port, lambda body: body.get("ai_server") == "reachable")
    return service, web_port, ai_port


@pytest.mark.integrated
def test_layout(result: Path) -> None:
    for name in ("start-oneshot", "web", "ai-server"):
        assert os.access(result / "bin" / name, os.X_OK), name
    assert (result / "elixir" / "bin" / "web").is_file()
    assert not (result / "elixir" / "releases" / "COOKIE").exists()  # no secret in the store
    assert (result / "ai-server" / "src" / "index.ts").is_file()
    # npm dependencies: node_modules built by Nix from bun.lock, inside the closure.
    node_modules = (result / "ai-server" / "node_modules").resolve()
    assert str(node_modules).startswith("/nix/store/"), node_modules
    assert (node_modules / "valibot" / "package.json").is_file()
    assert sorted(p.name for p in result.iterdir()) == ["ai-server", "bin", "elixir"]


@pytest.mark.integrated
def test_web_alone_reports_the_ai_server_unreachable(
    launch: Callable[..., Service], result: Path, tmp_path: Path
) -> None:
    port = free_port()
    web = launch(
        [str(result / "bin" / "web")],
        PORT=str(port),
        AI_SERVER_URL=f"http://127.0.0.1:{free_port()}",
        DATA_DIR=str(tmp_path),
        NIXFLY_RELEASE="smoke-release-1",
    )
    assert wait_healthy(port) == {
        "status": "ok",
        "service": "web",
        "release": "smoke-release-1",
        "ai_server": "unreachable",
    }
    web.process.send_signal(signal.SIGTERM)
    assert web.wait_exit(GRACE_SECONDS) == 0


@pytest.mark.integrated
@pytest.mark.ai_server
def test_ai_server_alone_answers_health(launch: Callable[..., Service], result: Path) -> None:
    port = free_port()
    ai_server = launch([str(result / "bin" / "ai-server")], PORT=str(port), AI_PROVIDER="echo")
    body = wait_healthy(port)
    assert body["status"] == "ok"
    assert "providers" in body
    ai_server.process.send_signal(signal.SIGTERM)
    assert ai_server.wait_exit(GRACE_SECONDS) == 0


@pytest.mark.integrated
def test_chat_goes_through_web_to_the_ai_server_and_is_logged(
    launch: Callable[..., Service], result: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    oneshot, web_port, _ = start_oneshot(launch, result, data_dir)

    reply = request(f"http://127.0.0.1:{web_port}/chat", json.dumps({"message": "hello smoke"}).encode())
    assert reply.status == 200, reply.body
    assert reply.json() == {"provider": "echo", "reply": "echo: hello smoke"}

    chats = data_dir / "chats.jsonl"
    wait_until(lambda: chats.exists() and "hello smoke" in chats.read_text(), 10, "chats.jsonl")
    entry = json.loads(chats.read_text().splitlines()[-1])
    assert entry["request"] == {"message": "hello smoke"}
    assert entry["response"]["reply"] == "echo: hello smoke"

    output = oneshot.output
    assert "[web] " in output
    assert "[ai-server] " in output


@pytest.mark.integrated
def test_malformed_json_is_a_400_json_error(
    launch: Callable[..., Service], result: Path, tmp_path: Path
) -> None:
    _, web_port, ai_port = start_oneshot(launch, result, tmp_path)
    for port in (web_port, ai_port):
        reply = request(f"http://127.0.0.1:{port}/chat", b'{"message": ')
        assert reply.status == 400, (port, reply.body)
        assert "error" in reply.json()


@pytest.mark.integrated
def test_sigterm_stops_everything_within_the_grace_period(
    launch: Callable[..., Service], result: Path, tmp_path: Path
) -> None:
    oneshot, _, _ = start_oneshot(launch, result, tmp_path)
    assert len(oneshot.live_processes()) >= 3  # supervisor, BEAM, bun (+ line prefixers)
    started = time.monotonic()
    oneshot.process.send_signal(signal.SIGTERM)
    assert oneshot.wait_exit(GRACE_SECONDS + 5) == 0, oneshot.output
    assert time.monotonic() - started < GRACE_SECONDS
    wait_until(lambda: not oneshot.live_processes(), 5, "every process it started to exit")


@pytest.mark.integrated
def test_a_dead_ai_server_makes_start_oneshot_fail(
    launch: Callable[..., Service], result: Path, tmp_path: Path
) -> None:
    oneshot, _, _ = start_oneshot(launch, result, tmp_path)
    # bun, whatever its parent (start-oneshot runs each service under a waiter of its own).
    [ai_server] = [pid for pid, _, cmdline in oneshot.live_processes() if "src/index.ts" in cmdline]
    os.kill(ai_server, signal.SIGKILL)
    status = oneshot.wait_exit(GRACE_SECONDS + 5)
    assert status != 0, oneshot.output
    assert "ai-server exited with status" in oneshot.output
    wait_until(lambda: not oneshot.live_processes(), 5, "every process it started to exit")


MESSAGE_ERROR = '"message" is required and must be a non-empty string'


@pytest.mark.integrated
@pytest.mark.ai_server
def test_chat_requests_are_checked_by_the_npm_dependency(
    launch: Callable[..., Service], result: Path
) -> None:
    """valibot (pinned by ai-server/bun.lock) validates /chat; without node_modules the ai-server fails."""
    port = free_port()
    launch([str(result / "bin" / "ai-server")], PORT=str(port), AI_PROVIDER="echo")
    wait_healthy(port)
    accepted = request(f"http://127.0.0.1:{port}/chat", json.dumps({"message": "valid", "x": 1}).encode())
    assert (accepted.status, accepted.json()) == (200, {"provider": "echo", "reply": "echo: valid"})
    for body, error in (({"message": 7}, MESSAGE_ERROR), ([1, 2], "request body must be a JSON object")):
        rejected = request(f"http://127.0.0.1:{port}/chat", json.dumps(body).encode())
        assert (rejected.status, rejected.json()) == (400, {"error": error}), body


@pytest.mark.integrated
def test_the_closure_finds_its_system_tools_with_an_empty_path(
    launch: Callable[..., Service], result: Path, tmp_path: Path
) -> None:
    """System tools the apps run come from the closure (writeShellApplication runtimeInputs, the release's
    wrapper), never from the host: start-oneshot's sleep, web's mktemp, the release scripts' sed."""
    launcher = (result / "bin" / "start-oneshot").resolve().read_text()
    [path_line] = [line for line in launcher.splitlines() if line.startswith("export PATH=")]
    entries = path_line.removeprefix('export PATH="').removesuffix(':$PATH"').split(":")
    assert all(entry.startswith("/nix/store/") for entry in entries), entries
    assert any(os.access(Path(entry) / "sleep", os.X_OK) for entry in entries), entries

    oneshot, web_port, _ = start_oneshot(launch, result, tmp_path, PATH="")
    reply = request(f"http://127.0.0.1:{web_port}/chat", json.dumps({"message": "no PATH"}).encode())
    assert reply.status == 200, reply.body
    rejected = request(f"http://127.0.0.1:{web_port}/chat", json.dumps({"message": " "}).encode())
    assert (rejected.status, rejected.json()) == (400, {"error": MESSAGE_ERROR})
    oneshot.process.send_signal(signal.SIGTERM)
    assert oneshot.wait_exit(GRACE_SECONDS + 5) == 0, oneshot.output
    assert "not found" not in oneshot.output, oneshot.output
