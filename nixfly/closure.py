"""Moving a closure between machines with ``nix copy`` over Nix's ssh store.

Nix runs ssh itself: the host and user come from the ``ssh://user@host`` store URI, everything else (port,
an explicit ssh config file, no prompts) from NIX_SSHOPTS, which Nix splits at whitespace. The remote end
runs ``nix-store --serve --write``, so nix must be on the PATH of non-interactive SSH sessions there.
Paths built on a build host are unsigned: copies from it skip the signature check (it is our own builder).
"""

from __future__ import annotations

from nixfly import nix
from nixfly.endpoint import Endpoint
from nixfly.errors import NixflyError
from nixfly.remote import ssh_config_path
from nixfly.runner import Runner

COPY_HINT = (
    "the user on the receiving host must be allowed to add unsigned paths (root, or trusted-users in its "
    "nix.conf), and nix-store must be on PATH for non-interactive SSH sessions there"
)


def sshopts(*endpoints: Endpoint) -> str:
    """NIX_SSHOPTS for these hosts: one port at most (NIX_SSHOPTS applies to every ssh nix runs)."""
    ports = {e.port for e in endpoints if e.port}
    if len(ports) > 1:
        raise NixflyError(
            "cannot copy between two hosts on different SSH ports",
            "give them Host entries with a Port in ~/.ssh/config and use the host names",
        )
    options = ["-o", "BatchMode=yes"]
    config = ssh_config_path()
    if config:
        if any(c.isspace() for c in config):
            raise NixflyError(
                f"NIXFLY_SSH_CONFIG {config!r} contains whitespace", "Nix splits NIX_SSHOPTS at spaces"
            )
        options += ["-F", config]
    if ports:
        options += ["-p", str(ports.pop())]
    return " ".join(options)


def copy(
    runner: Runner, store_path: str, *, source: Endpoint | None = None, dest: Endpoint | None = None
) -> None:
    """Copy ``store_path``'s closure from ``source`` (default: here) to ``dest`` (default: here)."""
    args = ["copy"]
    if source is not None:
        args += ["--from", source.store_uri, "--no-check-sigs"]
    if dest is not None:
        args += ["--to", dest.store_uri]
    endpoints = [e for e in (source, dest) if e is not None]
    runner.run(
        nix.argv(*args, store_path),
        env={"NIX_SSHOPTS": sshopts(*endpoints)},
        hint=COPY_HINT,
    )
