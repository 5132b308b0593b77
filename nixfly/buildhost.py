"""The Nix steps on another Linux host (``--on user@host[:port]``): build and smoke-test there.

The checkout is synced to ``~/.cache/nixfly/checkouts/<name>-<hash>`` on the host (``remote.sync_checkout``)
and nix runs there with the same flags as here (NIXFLY_NIX_OPTIONS included); results stay on the host,
next to the checkout, and output streams back prefixed with the host.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from nixfly import console, deps, nix
from nixfly.config import Settings
from nixfly.errors import NixflyError
from nixfly.nix import Built, Nix, error_block
from nixfly.remote import NIX_ON_PATH_HINT, RemoteRunner, parse_endpoint, sync_checkout
from nixfly.runner import REDACT


def remote_runner(settings: Settings, on: str) -> RemoteRunner:
    """A runner for ``on`` (``user@host[:port]``); it connects on first use, never in a dry-run."""
    return RemoteRunner(parse_endpoint(on), dry_run=settings.dry_run)


def require_nix(remote: RemoteRunner) -> str:
    """nix's path on the host, or a ``NixflyError`` saying it is missing there."""
    found = remote.which("nix")
    if not found:
        raise NixflyError(f"nix not found on {remote.endpoint}", NIX_ON_PATH_HINT)
    return found


def build(remote: RemoteRunner, checkout: PurePosixPath, attr: str, out_link: str) -> Built:
    """``nix build .#attr --out-link <checkout>/<out_link>`` on the host; the store path is read there too."""
    link = checkout / out_link
    result = remote.run(nix.argv("build", f".#{attr}", "--out-link", str(link)), cwd=checkout, check=False)
    if result.returncode != 0:
        stale = deps.stale_error(result.stderr)
        if stale is not None:
            raise stale
        console.error(REDACT(error_block(result.stderr)))
        raise NixflyError(
            f"nix build .#{attr} failed on {remote.endpoint} (exit {result.returncode})",
            "see nix's error above",
        )
    if result.dry_run:
        return Built(attr, "", Path(str(link)), 0, 0, cached=False)
    store_path = remote.run(["readlink", str(link)], mutates=False, quiet=True).stdout.strip()
    nar, closure = Nix(remote, Path(str(checkout))).sizes(store_path)  # type: ignore[arg-type]
    return Built(attr, store_path, Path(str(link)), nar, closure, cached=False)


def build_on(settings: Settings, remote: RemoteRunner, attr: str = "", out_link: str = "") -> Built:
    """Sync this checkout to the host and build the mode's attribute (or ``attr``) there."""
    require_nix(remote)
    checkout = sync_checkout(remote, settings.root)
    return build(remote, checkout, attr or settings.mode.flake_attr, out_link or settings.mode.out_link)


def smoke(settings: Settings, remote: RemoteRunner, checkout: PurePosixPath, result: str) -> None:
    """tests/smoke with the host's python3, against ``result`` (a path on the host)."""
    if not (settings.root / "tests" / "smoke").is_dir():
        raise NixflyError("tests/smoke is missing", "run from the nixfly checkout, or pass --skip-smoke")
    argv = ["python3", "-m", "pytest", "tests/smoke", "-q", "-p", "no:cacheprovider"]
    if settings.mode.smoke:
        argv += ["-m", settings.mode.smoke]
    remote.run(
        argv,
        cwd=checkout,
        env={"NIXFLY_RESULT": result},
        hint=f"the smoke tests failed on {remote.endpoint} (python3 with pytest must be installed there)",
    )
