"""A real container registry (Debian's docker-registry, the CNCF distribution server) on 127.0.0.1."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from helpers.procs import free_port, wait_until
from helpers.project import require


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    data: Path


@contextmanager
def running_registry(workdir: Path, *, user: str = "", password: str = "") -> Iterator[Registry]:
    """Serve a registry until the block ends; with ``user``/``password`` it demands basic auth (htpasswd)."""
    binary = require("docker-registry")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    auth = ""
    if user:
        import bcrypt  # ships with paramiko, which fabric brings

        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        (workdir / "htpasswd").write_text(f"{user}:{hashed}\n")
        auth = f"auth:\n  htpasswd:\n    realm: nixfly-test\n    path: {workdir / 'htpasswd'}\n"
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    log = (workdir / "registry.log").open("w")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {(workdir / 'registry.log').read_text()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
        except urllib.error.HTTPError:
            return True  # 401 with auth on: it is up
        except OSError:
            return False
        return True

    try:
        wait_until(up, 20, f"docker-registry on 127.0.0.1:{port}")
        yield Registry(f"127.0.0.1:{port}", workdir / "data")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
