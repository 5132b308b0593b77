"""Fixture helpers of the target tests: real OpenSSH servers on 127.0.0.1 (each with its own host key, HOME
and ports; one client key and ssh config), a tiny app flake built by real Nix, and the cleanup that makes sure
nothing a test started outlives it.

``running_sshd``: one sshd in the foreground (``-D -e``) as a child of the test process on three spare
ports: on the first a session has the normal PATH; on the second (``nonix_port``) PATH holds nothing at all,
to play a host without Nix; on the third (``offpath_port``) PATH holds every tool but Nix's, which is in
~/.nix-profile/bin (a HOME of its own, ``offpath_home``), to play a host whose Nix installer added itself
only to login shells. Sessions get HOME
set to a temp dir, so remote checkouts and target state stay inside the test's tmp_path, and PATH starting
with this Python's directory (pytest for the remote smoke step).

``running_fleet``: N such servers playing N hosts. Every session of host k runs in a network namespace of
its own (sshd's ForceCommand enters it with nsenter), so each host has its own loopback and the same app
port is free on every host, as on N machines; sshd itself listens in this namespace, where the tests reach
it. The Nix store is this machine's, shared by all N.
Missing tools are a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helpers import procs
from helpers.procs import free_port
from helpers.project import require
from nixfly import engine
from nixfly.config import Settings
from nixfly.pipeline import StepRecord
from nixfly.runner import here
from nixfly.target import Options, Target

T = TypeVar("T")

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
START_TIMEOUT = 10.0


def closed_port() -> int:
    """A port nothing listens on (bound and released, so nothing else got it in between)."""
    return free_port()


# --- the tiny app: /health answers 200 (v1, v3) or 500 (v2), naming its release as the real apps do ------
APP_PY = r"""
import http.server, json, os, sys

version, status = sys.argv[1], int(sys.argv[2])
sick = os.path.join(os.environ.get("HOME", "/nonexistent"), "nixfly-test-sick")
if os.path.exists(sick) and version in open(sick).read().split():
    status = 500
data = os.environ.get("DATA_DIR", "")
if data:
    with open(os.path.join(data, "started"), "a") as log:
        log.write(version + "\n")
release = os.environ.get("NIXFLY_RELEASE", "")
health = {"status": "ok", "service": "web", "release": release, "version": version}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(health).encode() if self.path == "/health" else f"{version} {data}\n".encode()
        self.send_response(status if self.path == "/health" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


print(f"{version} listening on {os.environ['PORT']}", flush=True)
print(f"token {os.environ.get('CLAUDE_ACCESS_TOKEN', '-')}", flush=True)  # a careless app: logs mask it
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
FLAKE = r"""
{
  outputs = { self }:
    let
      app = version: status: derivation {
        name = "nixfly-tiny-${version}-NONCE";
        system = "x86_64-linux";
        builder = "/bin/bash";
        args = [ "-c" ''
          /bin/mkdir -p $out/bin
          printf '#!/bin/bash\nexec /usr/bin/python3 %s %s %s\n' ${./app.py} ${version} ${toString status} \
            > $out/bin/start-oneshot
          /bin/chmod +x $out/bin/start-oneshot
          # NixOS/nix#2176: Nix 2.8 may SIGKILL a quick builder after its output closed but before it
          # exited ("failed due to signal 9"). A child holding the log pipe a moment makes Nix wait.
          /bin/sleep 0.2 &
        '' ];
      };
    in {
      packages.x86_64-linux = rec {
        v1 = app "v1" 200;
        v2 = app "v2" 500;
        v3 = app "v3" 200;
        oneshot-integrated = v1; # what a mode builds by default
      };
    };
}
"""
# The tiny app answers 500 on a host whose HOME holds this file naming its version: one sick host in a group.
SICK = "nixfly-test-sick"
FLY_TOML = """
app = "oneshot"
primary_region = "iad"
kill_timeout = 3
[env]
  DATA_DIR = "/data"
  GREETING = "hello"
[[mounts]]
  source = "oneshot_data"
  destination = "/data"
[http_service]
  internal_port = {port}
  [[http_service.checks]]
    method = "GET"
    path = "/health"
"""


def nix_build(flake: str, attrs: list[str], out: Path) -> list[str]:
    """Store paths of ``attrs`` built by the real nix (offline flags from NIXFLY_NIX_OPTIONS)."""
    require("nix")
    installables = [f"{flake}#{attr}" for attr in attrs]
    built = subprocess.run(
        [
            "nix",
            "--extra-experimental-features",
            "nix-command flakes",
            "build",
            *installables,
            "--out-link",
            str(out),
            *shlex.split(os.environ["NIXFLY_NIX_OPTIONS"]),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    links = [out] + [out.with_name(f"{out.name}-{i}") for i in range(1, len(attrs))]
    return [os.readlink(link) for link in links]


def tiny_flake(directory: Path, nonce: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(APP_PY)
    (directory / "flake.nix").write_text(FLAKE.replace("NONCE", nonce))
    return directory


def session_pids(sid: int) -> list[int]:
    """Running processes in session ``sid``: a released app and everything it started."""
    return [p.pid for p in procs.session(sid)]


def kill_session(pidfile: Path) -> None:
    """Last-resort cleanup: SIGKILL what is left of the session a release's pidfile names ("PID STARTTIME").

    Only while that pid is still the same process (same start time) or gone: a reused pid must never make
    a test kill a stranger, such as a nix builder, which also leads a session of its own.
    """
    try:
        sid, started = pidfile.read_text().split()[:2]
    except (OSError, ValueError):
        return
    with suppress(FileNotFoundError):
        if Path(f"/proc/{sid}/stat").read_text().rsplit(")", 1)[1].split()[19] != started:
            return
    for pid in session_pids(int(sid)):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class Sshd:
    port: int
    nonix_port: int
    offpath_port: int
    user: str
    home: Path
    offpath_home: Path
    ssh_config: Path
    key: Path
    wrong_key: Path
    log: Path

    @property
    def endpoint(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    def forget_store(self) -> None:
        """From now on the host answers as one whose store lacks every path (``nix-store --check-validity``
        fails), so a deploy copies to it. It shares this machine's store, which would otherwise always hold
        the closure, and nixfly rightly skips copying to a host that has it."""
        (self.home / FRESH_STORE_MARK).touch()

    @property
    def nonix_endpoint(self) -> str:
        return f"{self.user}@127.0.0.1:{self.nonix_port}"

    @property
    def offpath_endpoint(self) -> str:
        return f"{self.user}@127.0.0.1:{self.offpath_port}"

    def nix_sshopts(self) -> str:
        return f"-F {self.ssh_config}"


def _keygen(path: Path) -> None:
    subprocess.run(
        [require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "nixfly-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"sshd exited with {proc.returncode}: {log.read_text(errors='replace')}"
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            if sock.recv(64).startswith(b"SSH-"):
                return
        time.sleep(0.05)
    raise AssertionError(f"sshd did not listen on {port} within {START_TIMEOUT}s: {log.read_text()}")


def _server_config(
    workdir: Path, host_key: Path, ports: list[int], home: Path, pidfile: Path, first: Path
) -> str:
    """sshd_config of one test server: keys from ``workdir``, sessions with ``home`` as HOME."""
    return "\n".join(
        [
            *(f"Port {port}" for port in ports),
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {pidfile}",
            f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
            "StrictModes no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "MaxStartups 50",
            f"Subsystem sftp {SFTP_SERVER}",
            # This Python first, as on a build host where pytest is installed (the remote smoke step).
            f"SetEnv HOME={home} PATH={first}:{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "",
        ]
    )


def _client_config(workdir: Path, key: Path) -> Path:
    """The ssh config every client (Fabric, nix copy's ssh) reads via NIXFLY_SSH_CONFIG."""
    path = workdir / "ssh_config"
    path.write_text(
        "\n".join(
            [
                "Host 127.0.0.1",
                "  User root",
                f"  IdentityFile {key}",
                "  IdentitiesOnly yes",
                "  StrictHostKeyChecking no",
                "  UserKnownHostsFile /dev/null",
                "  LogLevel ERROR",
                "",
            ]
        )
    )
    return path


FRESH_STORE_MARK = ".nixfly-test-fresh-store"


def _fresh_store_bin(directory: Path) -> Path:
    """A ``nix-store`` first on the sessions' PATH: the real one, except that with ``FRESH_STORE_MARK`` in
    HOME it answers ``--check-validity`` as a host without the path would (exit 1)."""
    real = shutil.which("nix-store")
    assert real, "nix-store is not installed: .ci/run installs nix-bin"
    directory.mkdir(parents=True)
    wrapper = directory / "nix-store"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ -e "$HOME/{FRESH_STORE_MARK}" ] && [ "$1" = --check-validity ]; then exit 1; fi\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    return directory


def _tools_but_nix(tools: Path, nix_profile: Path) -> Path:
    """``tools``: a link to every command on this machine's PATH but Nix's; ``nix_profile``: Nix's."""
    tools.mkdir(parents=True)
    nix_profile.mkdir(parents=True)
    for directory in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        for command in sorted(Path(directory).iterdir()) if Path(directory).is_dir() else []:
            into = nix_profile if command.name.startswith("nix") else tools
            if not (into / command.name).exists():
                (into / command.name).symlink_to(command)
    assert (nix_profile / "nix-store").exists() and not (tools / "nix").exists()
    return tools


@contextmanager
def running_sshd(workdir: Path) -> Iterator[Sshd]:
    """Start sshd; stop it (and only it) afterwards, even when the test failed."""
    require(SSHD)
    assert os.geteuid() == 0, "the sshd fixture logs in as root: run the tests as root"
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, key, wrong_key = workdir / "host_ed25519", workdir / "id_ed25519", workdir / "wrong_ed25519"
    for path in (host_key, key, wrong_key):
        _keygen(path)
    (workdir / "authorized_keys").write_text((workdir / "id_ed25519.pub").read_text())
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    # sshd refuses to start without its privilege separation directory.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port, nonix_port, offpath_port = free_port(), free_port(), free_port()
    offpath_home = workdir / "home-offpath"
    tools = _tools_but_nix(workdir / "tools-but-nix", offpath_home / ".nix-profile" / "bin")
    config = workdir / "sshd_config"
    config.write_text(
        _server_config(
            workdir,
            host_key,
            [port, nonix_port, offpath_port],
            home,
            workdir / "sshd.pid",
            _fresh_store_bin(workdir / "fresh-store-bin"),
        )
        + f"Match LocalPort {nonix_port}\n  SetEnv HOME={home} PATH=/nonexistent-nixfly-test\n"
        + f"Match LocalPort {offpath_port}\n"
        + f"  SetEnv HOME={offpath_home} PATH={Path(sys.executable).parent}:{tools}\n"
    )
    ssh_config = _client_config(workdir, key)
    log = workdir / "sshd.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        _wait_listening(nonix_port, proc, log)
        _wait_listening(offpath_port, proc, log)
        ports = (port, nonix_port, offpath_port)
        yield Sshd(*ports, "root", home, offpath_home, ssh_config, key, wrong_key, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Holds a network namespace of its own, loopback up (ioctl SIOCSIFFLAGS: no iproute2 needed), until killed.
NETNS_HOLDER = r"""
import fcntl, signal, socket, struct
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sh", b"lo", 0)))[1]
    fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))
print("ready", flush=True)
signal.pause()
"""


@dataclass(frozen=True)
class FleetHost:
    """One host of a fleet: its sshd's port and HOME, and the process holding its network namespace."""

    port: int
    home: Path
    netns_pid: int
    log: Path
    user: str = "root"

    @property
    def endpoint(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"ssh://{self.endpoint}"

    @property
    def state(self) -> Path:
        """nixfly's state on this host (``~/.local/state/nixfly/local``)."""
        return self.home / ".local" / "state" / "nixfly" / "local"

    def get(self, port: int, path: str = "/") -> str:
        """GET from the host's own loopback (inside its namespace), as a program on the host would."""
        fetch = (
            "import sys, urllib.request as u; "
            "sys.stdout.write(u.urlopen(sys.argv[1], timeout=5).read().decode())"
        )
        done = subprocess.run(
            [
                require("nsenter"),
                f"--net=/proc/{self.netns_pid}/ns/net",
                "--",
                sys.executable,
                "-c",
                fetch,
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout


@dataclass(frozen=True)
class Fleet:
    hosts: list[FleetHost]
    ssh_config: Path

    def urls(self, *indexes: int) -> str:
        """``--target`` for these hosts (1-based, in order; all when none given)."""
        chosen = [self.hosts[i - 1] for i in indexes] if indexes else self.hosts
        return ",".join(h.url for h in chosen)


def _netns() -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [require("unshare"), "--net", sys.executable, "-c", NETNS_HOLDER],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert holder.stdout is not None
    line = holder.stdout.readline()
    assert line == "ready\n", f"no network namespace: {line}{holder.stdout.read() if holder.poll() else ''}"
    return holder


@contextmanager
def running_fleet(workdir: Path, count: int = 3) -> Iterator[Fleet]:
    """``count`` sshd on 127.0.0.1, one per host (own port, host key, HOME, network namespace for its
    sessions); all stopped afterwards, with the namespaces, even when the test failed."""
    require(SSHD)
    nsenter = require("nsenter")
    assert os.geteuid() == 0, "the sshd fixture logs in as root: run the tests as root"
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "id_ed25519"
    _keygen(key)
    (workdir / "authorized_keys").write_text((workdir / "id_ed25519.pub").read_text())
    ssh_config = _client_config(workdir, key)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    started: list[subprocess.Popen[Any]] = []
    try:
        hosts = []
        for number in range(1, count + 1):
            root = workdir / f"host{number}"
            root.mkdir()
            home, host_key, log = root / "home", root / "host_ed25519", root / "sshd.log"
            home.mkdir()
            _keygen(host_key)
            holder = _netns()
            started.append(holder)
            port = free_port()
            enter = f'exec {nsenter} --net=/proc/{holder.pid}/ns/net -- /bin/sh -c "$SSH_ORIGINAL_COMMAND"'
            config = root / "sshd_config"
            config.write_text(
                _server_config(
                    workdir,
                    host_key,
                    [port],
                    home,
                    root / "sshd.pid",
                    _fresh_store_bin(root / "fresh-store-bin"),
                )
                + f"ForceCommand {enter}\n"
            )
            with log.open("wb") as sink:
                sshd = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config)], stdout=sink, stderr=subprocess.STDOUT
                )
            started.append(sshd)
            _wait_listening(port, sshd, log)
            hosts.append(FleetHost(port, home, holder.pid, log))
        yield Fleet(hosts, ssh_config)
    finally:
        for proc in reversed(started):
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wrong_key_config(sshd: Sshd, workdir: Path) -> Path:
    """An ssh config like the fixture's but offering a key the server does not know."""
    path = workdir / "ssh_config_wrong_key"
    path.write_text(sshd.ssh_config.read_text().replace(str(sshd.key), str(sshd.wrong_key)))
    return path


# --- host deploys through the production pipeline -----------------------------------------------------------
def deploy_host(
    settings: Settings,
    target: str,
    store_path: str = "",
    *,
    on: str = "",
    port: int = 0,
    env: dict[str, str] | None = None,
    **options: bool,
) -> StepRecord:
    """``inv deploy --target …`` as tasks.py runs it (nixfly.engine), with ``./result`` → ``store_path``
    (build and smoke skipped unless ``options`` say otherwise); returns the activate step's record."""
    if store_path:
        link = settings.out_link
        if link.is_symlink():
            link.unlink()
        link.symlink_to(store_path)
        options = {"skip_build": True, "skip_smoke": True, **options}
    pipeline = engine.deploy(settings, here(settings), target, Options(**options), on=on, port=port, env=env)
    return next(r for r in pipeline.records if r.step == "activate")


def on_target(settings: Settings, target: str, ask: Callable[[Target], T]) -> T:
    """A task body's question to ``--target``, as tasks.py asks it (status, logs, stop): the target opened,
    asked, closed; returns the answer."""
    with engine.opened(settings, here(settings), target) as chosen:
        return ask(chosen)


def stop_on(settings: Settings, target: str) -> str:
    """``inv stop --target …``: the line it prints."""
    return on_target(settings, target, lambda chosen: chosen.stop())


def host_status(settings: Settings, target: str, capture: pytest.CaptureFixture[str]) -> dict:
    """``inv status --target … --json``'s document (``capture``: pytest's capsys or capfd)."""
    capture.readouterr()
    on_target(settings, target, lambda chosen: chosen.status(as_json=True))
    return json.loads(capture.readouterr().out)


def host_says(call: Callable[[], None], capture: pytest.CaptureFixture[str]) -> str:
    """What a task body printed (stdout and stderr), e.g. ``commands.rollback``'s."""
    capture.readouterr()
    call()
    out = capture.readouterr()
    return out.out + out.err
