"""A target's releases as generations of a Nix profile, through ``nix-env`` (Nix 2.8 and later alike).

``nix-env --profile P --set PATH`` makes a new generation ``P-<n>-link`` pointing at PATH and switches ``P``
to it; setting the path the current generation already has makes none (Nix compares them). ``--rollback``,
``--switch-generation N`` and ``--list-generations`` move between and list generations. Each generation is
a GC root, so a rollback never finds its closure collected.

These calls only rewrite symlinks beside P (the store path is already there: built here or copied by
``nix copy``), so nixfly's NIXFLY_NIX_OPTIONS, which carry flake and substituter flags that nix-env rejects,
do not apply to them, and nix-env needs no experimental features.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from nixfly.errors import NixflyError
from nixfly.hosts.host import Host

# "   3   2024-05-01 12:00:00   (current)"
GENERATION = re.compile(r"^\s*(\d+)\s+(\S+\s+\S+)\s*(\(current\))?\s*$")


@dataclass(frozen=True)
class Generation:
    number: int
    created: str
    current: bool


def parse_generations(text: str) -> list[Generation]:
    found = []
    for line in text.splitlines():
        match = GENERATION.match(line)
        if match:
            found.append(Generation(int(match[1]), match[2], bool(match[3])))
    return found


def generations(host: Host, profile: PurePosixPath) -> list[Generation]:
    """Oldest first; empty when the profile does not exist yet (or in a dry-run over SSH)."""
    if host.dry_run and not host.reads_in_dry_run:
        return []
    result = host.runner.run(
        ["nix-env", "--profile", str(profile), "--list-generations"], mutates=False, check=False, quiet=True
    )
    return parse_generations(result.stdout) if result.returncode == 0 else []


def current(host: Host, profile: PurePosixPath) -> Generation | None:
    return next((g for g in generations(host, profile) if g.current), None)


def link(profile: PurePosixPath, number: int) -> PurePosixPath:
    return profile.with_name(f"{profile.name}-{number}-link")


def store_path(host: Host, profile: PurePosixPath, number: int) -> str:
    """The store path generation ``number`` points at ("" if unknown)."""
    if host.dry_run and not host.reads_in_dry_run:
        return ""
    result = host.runner.run(["readlink", str(link(profile, number))], mutates=False, check=False, quiet=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def set_path(host: Host, profile: PurePosixPath, path: str) -> Generation | None:
    """Make ``path`` the profile's current generation (a new one unless it already is); returns it."""
    host.runner.run(
        ["nix-env", "--profile", str(profile), "--set", path],
        hint="the store path must be on the target: built there, or copied with `nix copy --to`",
    )
    return None if host.dry_run else current(host, profile)


def prune(host: Host, profile: PurePosixPath, keep: int) -> list[int]:
    """Delete all but the newest ``keep`` generations (never the current one); returns what was deleted.

    Like Kamal's "keep 5": enough to roll back a few releases, without every old closure pinned forever.
    """
    known = generations(host, profile)
    newest = {g.number for g in known[-keep:]} if keep > 0 else set()
    old = [g.number for g in known if g.number not in newest and not g.current]
    if old:
        host.runner.run(["nix-env", "--profile", str(profile), "--delete-generations", *map(str, old)])
    return old


def switch(host: Host, profile: PurePosixPath, number: int) -> None:
    known = generations(host, profile)
    if known and number not in {g.number for g in known}:
        raise NixflyError(
            f"{profile} has no generation {number}",
            f"generations: {', '.join(str(g.number) for g in known)} (`inv status --target …` lists them)",
        )
    host.runner.run(["nix-env", "--profile", str(profile), "--switch-generation", str(number)])
