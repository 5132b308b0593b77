"""Where the Nix steps run: here, or on a Linux build host (``--on user@host[:port]``).

One object for "build here or there": ``build`` an attribute, ``smoke``-test what was built, ``fetch`` a
result to this machine (pushing an image starts here, so the Fly token never leaves it). A ``BuildHost``
is a context manager: leaving the block closes its SSH connection.

On a build host the checkout is synced to ``~/.cache/nixfly/checkouts/<name>-<hash>``
(``remote.sync_checkout``) and nix runs there with the same flags as here (NIXFLY_NIX_OPTIONS included);
results stay on the host, next to the checkout, and output streams back prefixed with the host.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType

from nixfly import closure, console, deps, nix, smoke
from nixfly.config import Settings
from nixfly.endpoint import Endpoint, parse_endpoint
from nixfly.errors import NixflyError
from nixfly.nix import Built, Nix, error_block
from nixfly.remote import NIX_ON_PATH_HINT, RemoteRunner, sync_checkout
from nixfly.runner import REDACT, Runner

# What Fly Machines run (linux/amd64): an image built for anything else would not start there.
FLY_SYSTEM = "x86_64-linux"


def nix_system(kernel: str, machine: str) -> str:
    """``uname -s``/``-m`` as Nix names systems: ``x86_64-linux``, ``aarch64-darwin`` …"""
    machine = machine.lower()
    return f"{ {'amd64': 'x86_64', 'arm64': 'aarch64'}.get(machine, machine) }-{kernel.lower()}"


@dataclass
class BuildHost:
    """This machine (``endpoint`` None) or a build host over SSH; ``runner`` runs the Nix steps there."""

    settings: Settings
    runner: Runner
    endpoint: Endpoint | None = None
    _checkout: PurePosixPath | None = field(default=None, repr=False)
    # This machine's runner, for a build host over SSH: the checkout is listed here before it is sent.
    here: Runner | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return str(self.endpoint) if self.endpoint else "here"

    @property
    def where(self) -> str:
        """ " on HOST" for messages, "" here."""
        return f" on {self.endpoint}" if self.endpoint else ""

    def __enter__(self) -> BuildHost:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.runner.close()

    def has_nix(self) -> bool:
        return bool(self.runner.which("nix"))

    def require_nix(self) -> None:
        if not self.has_nix():
            if self.endpoint is None:
                raise NixflyError(
                    "nix not found on PATH", "install Nix with flakes enabled, or pass --skip-build"
                )
            raise NixflyError(f"nix not found on {self.endpoint}", NIX_ON_PATH_HINT)

    def system(self) -> str:
        """The Nix system this host builds for (asked over SSH on a build host; assumed in a dry-run)."""
        if self.endpoint is None:
            return nix_system(platform.system(), platform.machine())
        if self.runner.dry_run:
            return FLY_SYSTEM
        out = self.runner.run(["uname", "-sm"], mutates=False, quiet=True).stdout.split()
        kernel, machine = [*out, "?", "?"][:2]
        return nix_system(kernel, machine)

    def build(
        self,
        attr: str,
        out_link: str,
        *,
        fresh: bool = False,
        rebuild: bool = False,
        show_trace: bool = False,
        flake: str = ".",
    ) -> Built:
        """``nix build <flake>#attr`` with its result at ``out_link`` (beside the checkout, here or there).

        ``flake`` is ``.`` or what ``pinned`` returned on this host. ``fresh``, ``rebuild`` and
        ``show_trace`` are ``Nix.build``'s, for builds here only.
        """
        self.require_nix()
        if self.endpoint is None:
            root = self.settings.root
            return Nix(self.runner, root).build(
                attr, root / out_link, fresh=fresh, rebuild=rebuild, show_trace=show_trace, flake=flake
            )
        if fresh or rebuild or show_trace:
            raise NixflyError(
                "--fresh, --rebuild and --show-trace apply to builds on this machine",
                f"drop --on {self.endpoint}, or run them there: ssh {self.endpoint.host} then inv build …",
            )
        checkout = self._sync()
        link = checkout / out_link
        args = ["build", f"{flake}#{attr}", "--out-link", str(link)]
        result = self.runner.run(nix.argv(*args), cwd=checkout, check=False)
        if result.returncode != 0:
            stale = deps.stale_error(result.stderr)
            if stale is not None:
                raise stale
            console.error(REDACT(error_block(result.stderr)))
            raise NixflyError(
                f"nix build .#{attr} failed on {self.endpoint} (exit {result.returncode})",
                "see nix's error above",
            )
        if result.dry_run:
            return Built(attr, "", Path(str(link)), 0, 0, cached=False)
        store_path = self.runner.run(["readlink", str(link)], mutates=False, quiet=True).stdout.strip()
        nar, closure_bytes = Nix(self.runner, Path(str(checkout))).sizes(store_path)
        return Built(attr, store_path, Path(str(link)), nar, closure_bytes, cached=False)

    def pinned(self) -> str:
        """The checkout (synced there, on a build host) copied into that host's store, as a flake reference:
        every artifact of one deploy is built from it (``Nix.pinned``)."""
        self.require_nix()
        if self.endpoint is None:
            return Nix(self.runner, self.settings.root).pinned()
        return Nix(self.runner, Path(str(self._sync()))).pinned()

    def out_path(self, flake: str, attr: str) -> str:
        """The store path ``<flake>#attr`` would build on this host, by evaluation only."""
        root = self.settings.root if self.endpoint is None else Path(str(self._sync()))
        return Nix(self.runner, root).out_path(flake, attr)

    def smoke(self, built: Built) -> None:
        """tests/smoke against ``built`` (the mode's marker only), where it was built."""
        s = self.settings
        if not (s.root / "tests" / "smoke").is_dir():
            raise NixflyError("tests/smoke is missing", "run from the nixfly checkout, or pass --skip-smoke")
        if self.endpoint is None:
            smoke.run(self.runner, s.root, built.out_link, s.mode.smoke)
            return
        argv = ["python3", *smoke.pytest_args(Path("tests/smoke"), s.mode.smoke)]
        completed = self.runner.run(
            argv, cwd=self._sync(), env={"NIXFLY_RESULT": str(built.out_link)}, check=False
        )
        smoke.check(
            completed,
            f" on {self.endpoint}",
            f"fix the app, or the host (python3 with pytest must be installed on {self.endpoint})",
        )

    def fetch(self, built: Built, here: Runner) -> None:
        """Make ``built`` (its closure) present in this machine's store: ``nix copy --from`` the host."""
        if self.endpoint is not None and built.store_path:
            closure.copy(here, built.store_path, source=self.endpoint)

    def _sync(self) -> PurePosixPath:
        if self._checkout is None:
            assert self.here is not None, "open_build_host gives a remote build host this machine's runner"
            self._checkout = sync_checkout(self._remote(), self.settings.root, self.here)
        return self._checkout

    def _remote(self) -> RemoteRunner:
        assert isinstance(self.runner, RemoteRunner)
        return self.runner


def open_build_host(settings: Settings, here: Runner, on: str = "") -> BuildHost:
    """Here (through the task's runner ``here``), or ``on`` (``user@host[:port]``): it connects on first use,
    never in a dry-run."""
    if not on:
        return BuildHost(settings, here)
    endpoint = parse_endpoint(on)
    return BuildHost(settings, RemoteRunner(endpoint, dry_run=settings.dry_run), endpoint, here=here)
