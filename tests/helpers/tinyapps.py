"""Tiny apps for `--target local` tests of the health gate and of Ctrl-C, built by real Nix in a second.

Each is a Python HTTP server on ``$PORT`` whose ``/health`` names its service and release as the real apps do
(``{"status": "ok", "service": "web", "release": $NIXFLY_RELEASE}``), in one of these kinds:

* ``ok``: healthy;
* ``stubborn``: healthy, ignores SIGTERM (stopping it takes the whole kill_timeout);
* ``sick``: ``/health`` answers 500;
* ``other``: healthy, but says it is the ``ai-server`` (the other process of the same release);
* ``lingering``: serves from a grandchild in a session of its own and without nixfly's NIXFLY_SERVICE mark,
  which outlives the release's stop (a release that does not let go of its port);
* ``deaf``: runs and never listens.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex

from helpers import procs
from helpers.project import Project
from helpers.sshd import nix_build

KINDS = ("ok", "stubborn", "sick", "other", "lingering", "deaf")

APP = r"""
import http.server, json, os, signal, sys, time

kind = sys.argv[1]
health = {
    "status": "ok",
    "service": "ai-server" if kind == "other" else "web",
    "release": os.environ.get("NIXFLY_RELEASE", ""),
}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(health).encode()
        self.send_response(500 if kind == "sick" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve():
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()


if kind == "lingering-served":
    serve()
# A careless app prints a secret: `inv logs` must mask it, and the log must be its owner's alone.
print(f"{kind} on {os.environ['PORT']}, token {os.environ.get('CLAUDE_ACCESS_TOKEN', '-')}", flush=True)
if kind == "deaf":
    while True:
        time.sleep(3600)
if kind == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if kind == "lingering":
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            # Gone from the release entirely: a session of its own and no NIXFLY_SERVICE mark either (a
            # daemon started with a clean environment), so nixfly's stop cannot find it.
            env = {k: v for k, v in os.environ.items() if k != "NIXFLY_SERVICE"}
            os.execve(sys.executable, [sys.executable, sys.argv[0], "lingering-served"], env)
        os._exit(0)
    os.wait()
    while True:
        time.sleep(3600)
serve()
"""
FLAKE = r"""
{
  outputs = { self }:
    let
      app = kind: derivation {
        name = "nixfly-tinyapp-${kind}-NONCE";
        system = "x86_64-linux";
        builder = "/bin/bash";
        args = [ "-c" ''
          /bin/mkdir -p $out/bin
          printf '#!/bin/bash\nexec /usr/bin/python3 %s %s\n' ${./APP} ${kind} > $out/bin/start-oneshot
          /bin/chmod +x $out/bin/start-oneshot
          # NixOS/nix#2176: a child holding the log pipe a moment keeps Nix 2.8 from killing a quick builder.
          /bin/sleep 0.2 &
        '' ];
      };
      kinds = KINDS;
    in { packages.x86_64-linux = builtins.listToAttrs (map (k: { name = k; value = app k; }) kinds); };
}
"""
# The mode's fly toml for these apps: one volume (the mode's), one check, a kill_timeout of its own.
FLY_TOML = """
app = "oneshot"
primary_region = "iad"
kill_timeout = {kill_timeout}
[[mounts]]
  source = "oneshot_data"
  destination = "/data"
[http_service]
  internal_port = {port}
  [[http_service.checks]]
    method = "GET"
    path = "/health"
"""


@dataclass(frozen=True)
class TinyApps:
    paths: dict[str, str]  # kind → store path
    nonce: str  # in every app's command line (app.py's own store path holds it)

    def __getitem__(self, kind: str) -> str:
        return self.paths[kind]

    def running(self) -> list[procs.Proc]:
        return [p for p in procs.table() if p.running and f"tinyapp-{self.nonce}.py" in p.cmdline]

    def kill_all(self) -> None:
        """SIGKILL every running process of these apps (a lingering one escapes its release's session)."""
        for proc in self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


def build(directory: Path) -> TinyApps:
    """Every kind, built from a fresh flake in ``directory``: a nonce of its own, paths of its own."""
    nonce = token_hex(4)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"tinyapp-{nonce}.py").write_text(APP)
    kinds = " ".join(f'"{kind}"' for kind in KINDS)
    flake = (
        FLAKE.replace("NONCE", nonce)
        .replace("KINDS", f"[ {kinds} ]")
        .replace("./APP", f"./tinyapp-{nonce}.py")
    )
    (directory / "flake.nix").write_text(flake)
    paths = nix_build(f"path:{directory}", list(KINDS), directory / "result")
    # By name: the numbering of nix's out-links need not follow the order of the installables.
    return TinyApps({kind: next(p for p in paths if f"-tinyapp-{kind}-" in p) for kind in KINDS}, nonce)


# --- a project deploying them to `--target local` -----------------------------------------------------------
def use_local(project: Project, *, port: int, kill_timeout: float = 3, health_timeout: float = 6) -> None:
    """The project's mode runs a tiny app on ``port``; the health gate waits ``health_timeout`` seconds."""
    (project.root / "fly-integrated.toml").write_text(FLY_TOML.format(kill_timeout=kill_timeout, port=port))
    yaml = (project.root / "invoke.yaml").read_text()
    (project.root / "invoke.yaml").write_text(
        yaml.replace("    timeout: 6\n", f"    timeout: {health_timeout}\n")
    )


def point_result(project: Project, store_path: str) -> None:
    """./result → ``store_path``: what `inv deploy --skip-build` deploys."""
    link = project.root / "result"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(store_path)


def deploy_local(project: Project, store_path: str, *extra: str) -> subprocess.CompletedProcess[str]:
    point_result(project, store_path)
    return project.inv("deploy", "--skip-build", "--skip-smoke", "--target", "local", *extra)


def pidfile(project: Project) -> Path:
    return project.root / ".nixfly" / "local" / "run" / "oneshot.pid"


def live(project: Project) -> dict[str, object]:
    """The local target's record of the live release (generation, release id, port)."""
    record = json.loads((project.root / ".nixfly" / "local" / "oneshot" / "releases.json").read_text())
    return dict(record["live"])
