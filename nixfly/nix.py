"""Everything nixfly knows about the nix CLI. Works on Nix 2.8 (Debian) and modern Nix alike.

Every call gets ``NIXFLY_NIX_OPTIONS`` (split like a shell would), which is how offline machines pass
``--option substituters ''`` or ``--override-input nixpkgs path:…``: the code path is the same with and
without it. Nix 2.8 has no ``--print-out-paths``, so the store path is read from the out-link.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nixfly import console, deps, git
from nixfly.errors import CommandError, NixflyError
from nixfly.files import read_record, write_atomic
from nixfly.runner import REDACT, Runner

FEATURES = ["--extra-experimental-features", "nix-command flakes"]
INSTALL_HINT = "install Nix (https://nixos.org/download; Debian: apt-get install nix-bin) and enable flakes"


def options() -> list[str]:
    raw = os.environ.get("NIXFLY_NIX_OPTIONS", "")
    try:
        return shlex.split(raw)
    except ValueError as exc:
        raise NixflyError(f"NIXFLY_NIX_OPTIONS cannot be parsed: {exc}", "check its quoting") from None


def argv(*args: str) -> list[str]:
    """A nix command line: flakes enabled, then ``args``, then the user's ``NIXFLY_NIX_OPTIONS``."""
    return ["nix", *FEATURES, *args, *options()]


def without_overrides(opts: list[str]) -> list[str]:
    """``opts`` minus ``--override-input NAME REF``, which `nix flake update` would write into flake.lock."""
    out: list[str] = []
    skip = 0
    for opt in opts:
        if skip:
            skip -= 1
        elif opt == "--override-input":
            skip = 2
        else:
            out.append(opt)
    return out


def develop_argv(command: list[str]) -> list[str]:
    """``command`` inside the flake's dev shell."""
    return [*argv("develop"), "--command", *command]


def error_block(stderr: str) -> str:
    """Nix's own error, from its first ``error:`` line on (the build log tail it prints included)."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("error:"):
            return "\n".join(lines[i : i + 25])
    return "\n".join(lines[-15:])


def parse_path_info(data: Any, path: str) -> tuple[int, int]:
    """(narSize, closureSize) from ``path-info -S --json``: a list before Nix 2.19, a map by path after."""
    entry: dict[str, Any] = {}
    if isinstance(data, list):
        entry = next((e for e in data if e.get("path") == path), data[0] if data else {})
    elif isinstance(data, dict):
        entry = data.get(path) or next(iter(data.values()), {}) or {}
    return int(entry.get("narSize", 0)), int(entry.get("closureSize", 0))


def parse_closure(data: Any) -> tuple[int, int]:
    """(paths, total NAR bytes) of ``nix path-info -r --json``: a list before Nix 2.19, a map by path after.

    Invalid paths (``"valid": false`` in the list, ``null`` in the map) are not part of the closure.
    """
    if isinstance(data, list):
        entries = {
            e["path"]: e for e in data if isinstance(e, dict) and e.get("path") and e.get("valid", True)
        }
    elif isinstance(data, dict):
        entries = {path: e for path, e in data.items() if isinstance(e, dict)}
    else:
        entries = {}
    return len(entries), sum(parse_path_info(entries, path)[0] for path in entries)


def pinned_ref(metadata: Any) -> str:
    """``nix flake metadata --json``'s answer as a flake reference to exactly that copy of the source.

    ``path`` is the store path Nix copied the checkout to (for a git checkout: the files git shows it) and
    ``locked.narHash`` names its content; ``path:<store path>?narHash=…`` evaluates the same flake.lock and
    the same files as that moment's ``.``, whatever the checkout holds later.
    """
    path = metadata.get("path") if isinstance(metadata, dict) else None
    locked = metadata.get("locked") if isinstance(metadata, dict) else None
    nar_hash = locked.get("narHash") if isinstance(locked, dict) else None
    if not (isinstance(path, str) and path.startswith("/") and isinstance(nar_hash, str) and nar_hash):
        raise NixflyError(
            "`nix flake metadata --json` named no source path and hash",
            "check `nix --version` (2.8 or newer)",
        )
    return f"path:{path}?narHash={quote(nar_hash, safe='')}"


@dataclass(frozen=True)
class Built:
    attr: str
    store_path: str
    out_link: Path
    nar_size: int
    closure_size: int
    cached: bool


@dataclass
class Nix:
    runner: Runner
    root: Path

    def _run(self, *args: str, read: bool = False, **kw: Any) -> Any:
        try:
            return self.runner.run(argv(*args), mutates=not read, cwd=self.root, **kw)
        except CommandError as exc:
            if exc.kind == "not found":
                raise NixflyError(f"nix not found{self.runner.where or ' on PATH'}", INSTALL_HINT) from None
            raise

    def version(self) -> str:
        out = self.runner.run(["nix", "--version"], mutates=False, quiet=True).stdout
        match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
        return match.group(1) if match else out.strip()

    def build(
        self,
        attr: str,
        out_link: Path,
        *,
        fresh: bool = False,
        rebuild: bool = False,
        show_trace: bool = False,
        flake: str = ".",
    ) -> Built:
        """``nix build <flake>#attr``; skipped when nothing the flake can see changed since the last build.

        ``flake`` is ``.`` or a ``pinned`` copy of it: what a deploy builds its artifacts from, so the image
        holds the very closure that was smoke-tested even when the checkout changes in between.

        ``fresh`` runs nix even then (nix itself still reuses what is in the store); ``rebuild`` passes
        Nix's own ``--rebuild``: build the attribute's derivation again and fail if the output differs
        from the one in the store (a determinism check, which needs a previous build).
        """
        git.refuse_tracked_secrets(self.runner, self.root)
        key = self._inputs_key(attr)
        cache_file = self.root / ".nixfly" / f"build-{attr}.json"
        cached = read_record(cache_file)
        if (
            not (fresh or rebuild)
            and key
            and cached.get("key") == key
            and out_link.is_symlink()
            and os.readlink(out_link) == cached.get("store_path")
            and Path(cached["store_path"]).exists()
        ):
            store_path = str(cached["store_path"])
            nar, closure = self.sizes(store_path)
            return Built(attr, store_path, out_link, nar, closure, cached=True)
        args = ["build", f"{flake}#{attr}", "--out-link", str(out_link)]
        if rebuild:
            args.append("--rebuild")
        if show_trace:
            args.append("--show-trace")
        result = self._run(*args, check=False)
        if result.returncode != 0:
            # A stale ai-server/deps.json is one line naming the fix, not Nix's hash-mismatch dump.
            stale = deps.stale_error(result.stderr)
            if stale is not None:
                raise stale
            # Nix's own explanation (evaluation error, builder log tail) is the useful part: show it whole.
            block = REDACT(error_block(result.stderr))
            console.say(block)
            hint = "see nix's error above; add --show-trace for an evaluation error's full trace"
            if rebuild and "not valid" in block:
                hint = "--rebuild compares with an earlier build: build once without it first"
            elif rebuild and "deterministic" in block:
                hint = "the same derivation built twice gave different outputs: find what is not reproducible"
            elif "unable to download" in block:
                hint = (
                    "no network? NIXFLY_NIX_OPTIONS can point nixpkgs at a local copy (tests/nix/README.md)"
                )
            raise NixflyError(f"nix build .#{attr} failed (exit {result.returncode})", hint)
        if result.dry_run:
            return Built(attr, "", out_link, 0, 0, cached=False)
        store_path = os.readlink(out_link)
        if key:
            write_atomic(cache_file, json.dumps({"key": key, "store_path": store_path}), mode=0o644)
        nar, closure = self.sizes(store_path)
        return Built(attr, store_path, out_link, nar, closure, cached=False)

    def pinned(self) -> str:
        """The checkout as it is now, copied into the store: a flake reference (``pinned_ref``)."""
        git.refuse_tracked_secrets(self.runner, self.root)
        result = self._run("flake", "metadata", "--json", ".", read=True, quiet=True)
        if result.dry_run:  # a runner that does not read in a dry-run: the build is only planned anyway
            return "."
        try:
            return pinned_ref(json.loads(result.stdout))
        except json.JSONDecodeError:
            raise NixflyError("cannot read `nix flake metadata --json`", "check `nix --version`") from None

    def out_path(self, flake: str, attr: str) -> str:
        """The store path ``<flake>#attr`` would build, by evaluation only (nothing is built)."""
        result = self._run("eval", "--raw", f"{flake}#{attr}.outPath", read=True, quiet=True)
        return str(result.stdout).strip()

    def sizes(self, store_path: str) -> tuple[int, int]:
        result = self._run("path-info", "-S", "--json", store_path, read=True, quiet=True)
        try:
            return parse_path_info(json.loads(result.stdout), store_path)
        except json.JSONDecodeError:
            return 0, 0

    def closure_size(self, store_path: str) -> tuple[int, int]:
        """(paths, total NAR bytes) of ``store_path``'s closure; a read, so it runs in dry-run too."""
        result = self._run("path-info", "-rS", "--json", store_path, read=True, quiet=True, hint=INSTALL_HINT)
        try:
            return parse_closure(json.loads(result.stdout))
        except json.JSONDecodeError:
            raise NixflyError(f"cannot read `nix path-info --json` output for {store_path}") from None

    def deriver(self, store_path: str) -> str:
        """The derivation ``store_path`` was built from (``nix path-info --json``), "" when Nix knows none:
        what rebuilds exactly that path once it is gone (a receipt keeps it for the image)."""
        result = self._run("path-info", "--json", store_path, read=True, quiet=True)
        try:
            data = json.loads(result.stdout)
        except json.JSONDecodeError:
            return ""
        first = data[0] if isinstance(data, list) and data else {}
        deriver = first.get("deriver") if isinstance(first, dict) else None
        return str(deriver) if deriver else ""

    def realise(self, path: str) -> None:
        """``nix-store --realise``: a store path fetched, or a derivation's outputs built, as they were."""
        self.runner.run(["nix-store", "--realise", path], cwd=self.root, hint=INSTALL_HINT)

    def flake_update(self) -> None:
        self.runner.run(["nix", *FEATURES, "flake", "update", *without_overrides(options())], cwd=self.root)

    def _inputs_key(self, attr: str) -> str:
        """A digest of everything the flake can see, or "" outside git (then nix decides every time)."""
        names = git.visible_files(self.runner, self.root)
        if names is None:
            return ""
        digest = hashlib.sha256()
        digest.update(json.dumps([attr, options()]).encode())
        for name in names:
            path = self.root / name
            digest.update(name.encode() + b"\0")
            if path.is_file() and not path.is_symlink():
                digest.update(hashlib.sha256(path.read_bytes()).digest())
            elif path.is_symlink():
                digest.update(os.readlink(path).encode())
        return digest.hexdigest()


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"
