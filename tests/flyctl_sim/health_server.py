"""An HTTP stand-in for deployed apps' health endpoints: ``GET /<app>/health``.

200 ``{"status":"ok"}`` when the app's current release (the latest one current on its machines) is
healthy, 503 ``{"status":"unhealthy"}`` otherwise (also before any deploy), 404 for unknown apps or paths.
State is read under the state lock on every request.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

from flyctl_sim import health
from flyctl_sim.state import PathLike, locked, read_unlocked


def _handler_for(home: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, body: dict[str, str], *, head: bool = False) -> None:
            data = json.dumps(body, separators=(",", ":")).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def _answer(self, *, head: bool) -> None:
            parts = [unquote(p) for p in urlsplit(self.path).path.split("/") if p]
            if len(parts) != 2 or parts[1] != "health":
                self._reply(404, {"status": "not found"}, head=head)
                return
            with locked(home):
                state = read_unlocked(home)
            verdict = health.app_health(state, parts[0])
            if verdict is None:
                self._reply(404, {"status": "unknown app"}, head=head)
            elif verdict:
                self._reply(200, {"status": "ok"}, head=head)
            else:
                self._reply(503, {"status": "unhealthy"}, head=head)

        def do_GET(self) -> None:
            self._answer(head=False)

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


class HealthServer:
    """A running health server; use as a context manager or call ``stop()``."""

    def __init__(self, home: PathLike) -> None:
        self.home = Path(home)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self.home))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url_template = f"http://127.0.0.1:{self.port}/{{app}}/health"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="flyctl-sim-health", daemon=True
        )
        self._thread.start()

    def url(self, app: str) -> str:
        return self.url_template.format(app=app)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HealthServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
