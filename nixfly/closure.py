"""Moving a closure between machines with ``nix copy`` over Nix's ssh store.

Nix runs ssh itself: the host and user come from the ``ssh://user@host`` store URI, everything else (port,
an explicit ssh config file, no prompts) from NIX_SSHOPTS, which Nix splits at whitespace and gives to every
ssh it starts. So a copy between two hosts is one ``nix copy --from A --to B`` only when both are reached on
the same port; otherwise it is two, through this machine's store (the bytes pass through here either way:
Nix streams a copy between two remote stores through itself). The remote end runs ``nix-store --serve
--write``: from the PATH of non-interactive SSH sessions there, or, when a connection found Nix off that
PATH, from where it found it (the store URI's ``remote-program``). Paths built on a build host are
unsigned: copies from it skip the signature check (it is our own builder).
"""

from __future__ import annotations

from urllib.parse import quote

from nixfly import nix
from nixfly.endpoint import Endpoint
from nixfly.errors import NixflyError
from nixfly.remote import nix_off_path, ssh_config_path
from nixfly.runner import Runner

COPY_HINT = (
    "the user on the receiving host must be allowed to add unsigned paths (root, or trusted-users in its "
    "nix.conf), and nix-store must be on PATH for non-interactive SSH sessions there"
)


def sshopts(port: int | None = None) -> str:
    """NIX_SSHOPTS for a copy whose hosts are all reached on ``port`` (None: as the ssh config says)."""
    options = ["-o", "BatchMode=yes"]
    config = ssh_config_path()
    if config:
        if any(c.isspace() for c in config):
            raise NixflyError(
                f"NIXFLY_SSH_CONFIG {config!r} contains whitespace", "Nix splits NIX_SSHOPTS at spaces"
            )
        options += ["-F", config]
    if port:
        options += ["-p", str(port)]
    return " ".join(options)


def store_uri(endpoint: Endpoint) -> str:
    """Nix's ssh store for ``endpoint``, with where nix-store is when the host's sessions' PATH lacks it."""
    nix_dir = nix_off_path(endpoint)
    if nix_dir is None:
        return endpoint.store_uri
    return f"{endpoint.store_uri}?remote-program={quote(nix_dir, safe='/')}/nix-store"


def holds(runner: Runner, store_path: str, *, dest: Endpoint | None = None) -> bool:
    """Whether the store ``runner`` runs commands against (the host's own, over the connection already open)
    holds ``store_path``: ``nix-store --check-validity`` exits 0 for a valid path, and a valid path's
    references are valid too (Nix's closure invariant), so the whole closure is there and ``nix copy``
    would copy nothing. Any other answer (not valid, nix-store missing) means: copy."""
    nix_dir = nix_off_path(dest) if dest is not None else None
    exe = f"{nix_dir}/nix-store" if nix_dir else "nix-store"
    result = runner.run([exe, "--check-validity", store_path], mutates=False, check=False, quiet=True)
    return result.returncode == 0


def copy(
    runner: Runner, store_path: str, *, source: Endpoint | None = None, dest: Endpoint | None = None
) -> None:
    """Copy ``store_path``'s closure from ``source`` (default: here) to ``dest`` (default: here)."""
    if source is not None and dest is not None and source.port != dest.port:
        # One NIX_SSHOPTS cannot say two ports (and a port given for one host must not reach the other).
        copy(runner, store_path, source=source)
        copy(runner, store_path, dest=dest)
        return
    args = ["copy"]
    if source is not None:
        args += ["--from", store_uri(source), "--no-check-sigs"]
    if dest is not None:
        args += ["--to", store_uri(dest)]
    port = source.port if source is not None else dest.port if dest is not None else None
    runner.run(
        nix.argv(*args, store_path),
        env={"NIX_SSHOPTS": sshopts(port)},
        hint=COPY_HINT,
    )
