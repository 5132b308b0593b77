"""Stand-ins for the unit tests: a runner that runs nothing, Settings for a scratch checkout, Fly values.

``ScriptedRunner`` keeps ``Runner.run``'s whole algorithm (echo, dry-run, retries, typed errors) and replaces
only the transport, as ``RemoteRunner`` does: each command is recorded and answered from a script, so a test
sees exactly the argv nixfly would run and decides what the tool answers.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from helpers.project import REPO
from nixfly.config import Settings, resolve
from nixfly.errors import NixflyError
from nixfly.flyctl import Check, FlyRelease, Machine
from nixfly.nix import Built
from nixfly.runner import Completed, Cwd, Runner

STORE = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-oneshot-integrated"
# The files a Settings for the default modes reads (fly tomls, nixpacks configs).
MODE_FILES = (
    "fly-integrated.toml",
    "fly-ai-server.toml",
    "nixpacks.toml",
    "nixpacks-ai-server.toml",
)


@dataclass(frozen=True)
class Call:
    argv: tuple[str, ...]
    stdin: str | None
    env: Mapping[str, str]
    cwd: Cwd | None
    timeout: float | None

    @property
    def line(self) -> str:
        """The argv after the program, as one string (what the assertions compare)."""
        return " ".join(self.argv[1:])


Answer = Completed | Callable[["Call"], Completed]


@dataclass
class Rule:
    program: str | None
    words: tuple[str, ...]
    answers: list[Answer]

    def matches(self, argv: tuple[str, ...]) -> bool:
        if self.program is not None and Path(argv[0]).name != self.program:
            return False
        n, rest = len(self.words), argv[1:]
        return any(rest[i : i + n] == self.words for i in range(len(rest) - n + 1))


class ScriptedRunner(Runner):
    """A ``Runner`` whose commands are answered by rules: ``on("status", "--app", stdout=…)``.

    A rule matches when its words stand together, in order, anywhere after the program. Rules are tried
    newest first; a rule given several answers gives them in turn and repeats its last. A command no rule
    answers fails the test (nixfly ran something nobody expected).
    """

    def __init__(self, *, dry_run: bool = False, tools: Iterable[str] = (), label: str = "") -> None:
        super().__init__(dry_run=dry_run, retry_base_seconds=0.0, label=label)
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self.tools = set(tools)

    def on(
        self,
        *words: str,
        program: str | None = None,
        stdout: str = "",
        stderr: str = "",
        code: int = 0,
        then: Iterable[Answer] = (),
    ) -> ScriptedRunner:
        first = Completed((), code, stdout, stderr)
        self.rules.insert(0, Rule(program, tuple(words), [first, *then]))
        return self

    def answer(self, *words: str, program: str | None = None, with_: Callable[[Call], Completed]) -> None:
        """Answer with a function of the call (to look at stdin, or to raise)."""
        self.rules.insert(0, Rule(program, tuple(words), [with_]))

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if name in self.tools else None

    def lines(self) -> list[str]:
        return [call.line for call in self.calls]

    def _execute(
        self,
        argv: tuple[str, ...],
        *,
        stdin: str | None,
        timeout: float | None,
        env: Mapping[str, str] | None,
        cwd: Cwd | None,
        stream: Callable[[str], None] | None,
        quiet: bool,
        hint: str | None,
    ) -> Completed:
        call = Call(argv, stdin, dict(env or {}), cwd, timeout)
        self.calls.append(call)
        for rule in self.rules:
            if rule.matches(argv):
                answer = rule.answers.pop(0) if len(rule.answers) > 1 else rule.answers[0]
                done = answer(call) if callable(answer) else answer
                return Completed(argv, done.returncode, done.stdout, done.stderr)
        raise AssertionError(f"unexpected command: {argv}")


def checkout(root: Path) -> Path:
    """A scratch project root holding the files Settings and the Fly target read."""
    root.mkdir(parents=True, exist_ok=True)
    for name in MODE_FILES:
        shutil.copy(REPO / name, root / name)
    return root


def settings(
    root: Path,
    *,
    mode: str = "integrated",
    dry_run: bool = False,
    builder: str = "nixpacks",
    health_url: str = "http://127.0.0.1:9/health",
    config: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings as a task resolves them in ``root`` (``checkout`` it first), with a fast health policy."""
    base: dict[str, Any] = {
        "health": {"timeout": 1, "interval": 0.01, "max_interval": 0.02, "http_timeout": 1},
        "modes": {mode: {"health_url": health_url}},
        **(config or {}),
    }
    return resolve(base, root, mode=mode, dry_run=dry_run, builder=builder)


def machine(
    mid: str,
    state: str = "started",
    *,
    version: int = 1,
    checks: Mapping[str, str] | None = None,
    region: str = "iad",
    image: str = "registry.fly.io/app:v1",
    configured: int | None = None,
) -> Machine:
    """A machine of release ``version``; ``checks`` maps check names to passing/warning/critical (its config
    defines as many checks unless ``configured`` says otherwise: 1 with no results is a silent machine)."""
    found = tuple(
        Check(name, status)
        for name, status in (checks if checks is not None else {"servicecheck-00-http": "passing"}).items()
    )
    defined = len(found) if configured is None else configured
    return Machine(mid, state, region, image, version, "app", found, defined)


def release(version: int, status: str = "complete", image: str | None = None) -> FlyRelease:
    """Release ``version``, running ``registry.fly.io/app:v<version>`` unless ``image`` says otherwise."""
    ref = f"registry.fly.io/app:v{version}" if image is None else image
    return FlyRelease(version, status, ref, "2026-01-01T00:00:00Z", "")


@dataclass
class Served:
    """What a health URL answers, changeable while it serves; ``hits`` counts the requests."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"status": "ok"})
    hits: int = 0
    url: str = ""


@contextmanager
def serving(answer: Served | None = None) -> Iterator[Served]:
    """Serve ``answer`` at http://127.0.0.1:PORT/health (a str body as is, anything else as JSON)."""
    health = answer or Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            health.hits += 1
            body = health.body if isinstance(health.body, str) else json.dumps(health.body)
            data = body.encode()
            self.send_response(health.status)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll: shutdown() waits for the next one (0.5 s by default, for every test).
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    health.url = f"http://127.0.0.1:{server.server_port}/health"
    try:
        yield health
    finally:
        server.shutdown()
        server.server_close()


# What a BuildHere pins the checkout to: every build of one deploy is from it.
PINNED = "path:/nix/store/00000000000000000000000000000000-source?narHash=sha256-x"


class BuildHere:
    """A build host that builds instantly and records what it was asked."""

    endpoint = None
    where = ""

    def __init__(self, *, nix: bool = True) -> None:
        self.nix = nix
        self.asked: list[str] = []
        # The checkout as each call pins it (then PINNED), and what it evaluates the closure to.
        self.pins: list[str] = []
        self.evaluates_to = STORE

    def require_nix(self) -> None:
        self.asked.append("require_nix")
        if not self.nix:
            raise NixflyError("nix not found on PATH")

    def pinned(self) -> str:
        return self.pins.pop(0) if self.pins else PINNED

    def out_path(self, flake: str, attr: str) -> str:
        self.asked.append(f"eval {flake}#{attr}")
        return self.evaluates_to

    def build(self, attr: str, out_link: str, *, flake: str = ".") -> Built:
        self.asked.append(f"build {attr} {out_link}" + ("" if flake == PINNED else f" from {flake}"))
        return Built(attr, STORE, Path(out_link), 1, 2048, cached=False)

    def smoke(self, built: Built) -> None:
        self.asked.append(f"smoke {built.store_path}")
