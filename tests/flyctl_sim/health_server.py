"""An HTTP stand-in for deployed apps' health endpoints as Fly Proxy serves them: ``GET /<app>/health``.

The request goes to a STARTED machine of the app (``rollout.route``); with none started and
``auto_start_machines``, the proxy starts one first (the request changes state, as on Fly). The app answers
200 ``{"status":"ok","release":"<FLY_IMAGE_REF>"}`` when that machine's app is healthy, 503
``{"status":"unhealthy","release":...}`` when not; 503 without ``release`` when no machine can serve; 404 for
unknown apps or paths. ``control.serve_stale`` makes it answer from an old image. Every request runs under
the state lock.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

from flyctl_sim import rollout
from flyctl_sim.state import PathLike, transaction


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
            with transaction(home) as state:
                code, body = rollout.route(state, parts[0], start=True)
            self._reply(code, body, head=head)

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
