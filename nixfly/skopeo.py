"""Everything nixfly knows about skopeo: pushing a Nix-built image tarball to a registry, no Docker daemon.

Credentials never touch argv, nor (on Linux) any disk: they go into an in-memory auth file named with
``--authfile`` (``auth_file``), gone when the push is done or nixfly ends, however it ends.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixfly.errors import NixflyError
from nixfly.files import write_atomic
from nixfly.runner import REDACT, Runner

INSTALL_HINT = "install skopeo (it is in the dev shell: `nix develop`; Debian: apt-get install skopeo)"
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def registry_host(ref: str) -> str:
    return ref.split("/", 1)[0]


def tls_verify(ref: str) -> bool:
    """HTTPS everywhere except a registry on this machine (tests, local mirrors)."""
    host = registry_host(ref)
    return not any(host == h or host.startswith(h + ":") for h in LOOPBACK)


@contextmanager
def auth_file(registry: str, user: str, password: str) -> Iterator[Path]:
    """A containers-auth.json for one registry, alive only inside the ``with`` block.

    On Linux it is a sealed in-memory file (``memfd_create``) that skopeo opens as ``/proc/<pid>/fd/<n>``:
    it is on no disk, so however nixfly ends (``kill -9`` included) nothing of it is left; only processes of
    this user may open it, as for a 0600 file. Elsewhere: a 0600 file in a private temp directory, removed
    on every exit nixfly sees (TERM and HUP included).
    """
    REDACT.add(password)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    text = json.dumps({"auths": {registry: {"auth": token}}})
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("nixfly-registry-auth", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            data = text.encode()
            while data:
                data = data[os.write(fd, data) :]
            # Nothing (not even a skopeo that wanted to) can change it from here on.
            fcntl.fcntl(
                fd,
                fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL,
            )
            yield Path(f"/proc/{os.getpid()}/fd/{fd}")
        finally:
            os.close(fd)
        return
    directory = Path(tempfile.mkdtemp(prefix="nixfly-auth-"))
    try:
        path = directory / "auth.json"
        write_atomic(path, text, mode=0o600)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def explain(message: str, ref: str) -> NixflyError:
    """skopeo's failure as the user's problem: unreachable registry, refused credentials, or other."""
    lowered = message.lower()
    host = registry_host(ref)
    if "unauthorized" in lowered or "authentication required" in lowered or "denied" in lowered:
        return NixflyError(
            f"registry {host} refused the credentials",
            "check the Fly token (`flyctl auth whoami`; FLY_API_TOKEN) and that the app exists",
        )
    if any(
        s in lowered
        for s in ("connection refused", "no such host", "i/o timeout", "pinging container registry")
    ):
        return NixflyError(
            f"registry {host} is unreachable", "check the network and nixfly.registry in invoke.yaml"
        )
    return NixflyError(f"skopeo failed for {ref}: {message}")


@dataclass
class Skopeo:
    runner: Runner

    def _check(self) -> None:
        if not self.runner.which("skopeo"):
            raise NixflyError("skopeo not found on PATH", INSTALL_HINT)

    def exists(self, ref: str, auth: Path) -> bool:
        """Whether ``ref`` is already in the registry (a read; an unreachable registry is an error)."""
        return self.digest(ref, auth) is not None

    def digest(self, ref: str, auth: Path) -> str | None:
        """The digest of ``ref``'s manifest in the registry (``sha256:…``), None when it is not there.

        A manifest's digest is the SHA-256 of its bytes as the registry serves them (OCI image-spec
        descriptor.md, "Digests"), which is what ``--raw`` prints: one read, no second request.
        """
        manifest = self._inspect(ref, auth)
        return None if manifest is None else "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()

    def _inspect(self, ref: str, auth: Path, *flags: str) -> str | None:
        """``skopeo inspect --raw [flags]`` of ``ref`` as printed; None when the registry has no such tag."""
        self._check()
        result = self.runner.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                *flags,
                "--authfile",
                str(auth),
                f"--tls-verify={str(tls_verify(ref)).lower()}",
                f"docker://{ref}",
            ],
            mutates=False,
            check=False,
            quiet=True,
        )
        if result.returncode == 0:
            return result.stdout
        text = result.stderr.lower()
        if "manifest unknown" in text or "not found" in text or "name unknown" in text:
            return None
        raise explain(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output", ref)

    def push(self, archive: str, ref: str, auth: Path) -> str:
        """Copy ``archive`` to ``ref``; returns the digest of the manifest as pushed ("" in a dry-run).

        ``--digestfile`` is skopeo copy's own record of that digest: the one a deploy pins.
        """
        # Not beside the auth file: that is in memory (/proc/<pid>/fd/), where nothing can be created. The
        # digest is no secret, so a private temp directory (removed on the way out) will do.
        with tempfile.TemporaryDirectory(prefix="nixfly-digest-") as directory:
            digestfile = Path(directory) / "digest"
            self._copy_to(ref, auth, f"docker-archive:{archive}", "--digestfile", str(digestfile))
            return digestfile.read_text().strip() if digestfile.is_file() else ""

    def push_layout(self, layout: Path, name: str, ref: str, auth: Path) -> None:
        """Copy image ``name`` of an OCI layout directory (``oci:DIR:NAME``) to ``ref``, as it is: an
        artifact (nixfly's receipt) keeps its own media types, and its manifest digest."""
        self._copy_to(ref, auth, f"oci:{layout}:{name}")

    def _copy_to(self, ref: str, auth: Path, source: str, *flags: str) -> None:
        """``skopeo copy`` of ``source`` to the registry's ``ref``; a failure is explained for that ref."""
        self._check()
        tls = f"--dest-tls-verify={str(tls_verify(ref)).lower()}"
        try:
            self.runner.run(
                ["skopeo", "copy", "--authfile", str(auth), *flags, tls, source, f"docker://{ref}"]
            )
        except NixflyError as exc:
            raise explain(exc.message, ref) from None

    def pull_layout(self, ref: str, layout: Path, name: str, auth: Path) -> bool:
        """Copy ``ref`` into an OCI layout directory as ``name`` (a read of the registry: it runs in a
        dry-run too); False when there is no such tag."""
        self._check()
        result = self.runner.run(
            [
                "skopeo",
                "copy",
                "--authfile",
                str(auth),
                f"--src-tls-verify={str(tls_verify(ref)).lower()}",
                f"docker://{ref}",
                f"oci:{layout}:{name}",
            ],
            mutates=False,
            check=False,
            quiet=True,
        )
        if result.returncode == 0:
            return True
        text = result.stderr.lower()
        if "manifest unknown" in text or "not found" in text or "name unknown" in text:
            return False
        raise explain(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no output", ref)

    def config_blob(self, ref: str, auth: Path) -> str | None:
        """The config blob of ``ref``'s manifest as stored (``inspect --raw --config``: the manifest and
        the blob, one command); None when there is no such tag."""
        return self._inspect(ref, auth, "--config")

    def config_of_archive(self, archive: str) -> dict[str, Any]:
        self._check()
        result = self.runner.run(
            ["skopeo", "inspect", "--config", f"docker-archive:{archive}"], mutates=False, quiet=True
        )
        return json.loads(result.stdout)
