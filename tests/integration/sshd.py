"""A real OpenSSH server on 127.0.0.1 for the remote tests: its own host key, client keys, ssh config.

sshd runs in the foreground (``-D -e``) as a child of the test process on two spare ports: on the first a
session has the normal PATH; on the second (``nonix_port``) PATH holds no nix, to play a host without Nix.
Sessions get HOME set to a temp dir, so remote checkouts and target state stay inside the test's tmp_path.
Missing tools are a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
START_TIMEOUT = 10.0


def require(tool: str) -> str:
    """The tool's path; an assertion failure (not a skip) when this machine lacks it."""
    path = tool if os.path.isabs(tool) and os.access(tool, os.X_OK) else shutil.which(tool)
    assert path, f"{tool} is required by these tests (Debian: apt-get install openssh-server openssh-client)"
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A port nothing listens on (bound and released, so nothing else got it in between)."""
    return free_port()


@dataclass(frozen=True)
class Sshd:
    port: int
    nonix_port: int
    user: str
    home: Path
    ssh_config: Path
    key: Path
    wrong_key: Path
    log: Path

    @property
    def endpoint(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    @property
    def nonix_endpoint(self) -> str:
        return f"{self.user}@127.0.0.1:{self.nonix_port}"

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
    port, nonix_port = free_port(), free_port()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join([
            f"Port {port}",
            f"Port {nonix_port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
            "StrictModes no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "MaxStartups 50",
            f"Subsystem sftp {SFTP_SERVER}",
            f"SetEnv HOME={home}",
            f"Match LocalPort {nonix_port}",
            f"  SetEnv HOME={home} PATH=/nonexistent-nixfly-test",
            "",
        ])
    )
    ssh_config = workdir / "ssh_config"
    ssh_config.write_text(
        "\n".join([
            "Host 127.0.0.1",
            "  User root",
            f"  IdentityFile {key}",
            "  IdentitiesOnly yes",
            "  StrictHostKeyChecking no",
            "  UserKnownHostsFile /dev/null",
            "  LogLevel ERROR",
            "",
        ])
    )
    log = workdir / "sshd.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, log)
        _wait_listening(nonix_port, proc, log)
        yield Sshd(port, nonix_port, "root", home, ssh_config, key, wrong_key, log)
    finally:
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
