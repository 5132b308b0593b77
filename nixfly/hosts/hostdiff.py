"""The diff in a host group's plan: what a deploy changes against each host's live generation.

Each host's live manifest is read *on the host*, in one command (one round trip over the connection the
deploy already holds; concurrent across hosts, ``across.each``): its profile's current generation, that
closure's ``nix path-info --json --recursive``, and the lock files inside it (``sbom``'s ``bun.lock`` /
``mix.lock``). The host's store is the truth of what it runs, whether or not this machine still has the
closure. A dry-run over SSH otherwise opens no connection; for this one read it opens one per host, reads
and closes it (a read changes nothing, and a plan that cannot say what changes is no plan). A host that
cannot be read is named, and the plan goes on.

Hosts whose live closures are the same store path share one diff, so a group of twenty hosts on one release
reads as one diff (``closurediff``: nvd's groups, as short as ``nix store diff-closures``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from nixfly import nix, plandiff, sbom
from nixfly.closurediff import diff
from nixfly.config import Settings
from nixfly.errors import NixflyError
from nixfly.pipeline import Outcome, Table, done, planned, skipped
from nixfly.remote import FIND_NIX
from nixfly.runner import Runner
from nixfly.sbom import Manifest, Package
from nixfly.target import Candidate

# Nix's commands from where its installers put them when the SSH session's PATH lacks them (as the remote
# runner looks, ``remote.FIND_NIX``): the runner does so itself only for a command that is a nix command.
WITH_NIX = f'command -v nix-store > /dev/null 2>&1 || {{ d=$({FIND_NIX}); [ -z "$d" ] || PATH=$d:$PATH; }}\n'
# Starts each lock file's section in the read's output (a control character no lock file holds).
FILE_MARK = "\x1f"
# $1: the app's directory on the host (a relative one is under $HOME); $2: which generation (``profile``: the
# current one, or ``profile-N-link``); the rest: `nix path-info --json --recursive` (nix.argv). Prints
# nothing when the host has no such generation; else its link name, its store path, the closure's path-info
# JSON, then each lock file of the closure as FILE_MARK + its path, a newline, its text.
READ_LIVE = (
    WITH_NIX
    + r"""dir=$1 link=$2; shift 2
case $dir in /*) ;; *) dir=$HOME/$dir ;; esac
if [ "$link" = profile ]; then link=$(readlink "$dir/profile" 2>/dev/null) || exit 0; fi
path=$(readlink "$dir/$link") || exit 0
printf '%s\n%s\n' "$link" "$path"
"$@" "$path" || exit
printf '\n'
nix-store --query --requisites "$path" | while read -r p; do
  for f in "$p"/bun.lock "$p"/*/bun.lock "$p"/mix.lock "$p"/*/mix.lock; do
    if [ -f "$f" ]; then printf '\037%s\n' "$f"; cat "$f"; printf '\n'; fi
  done
done
"""
)
LINK = re.compile(r"profile-(\d+)-link")


@dataclass(frozen=True)
class Live:
    """A host's live generation and what it holds."""

    generation: int
    manifest: Manifest

    @property
    def store_path(self) -> str:
        return self.manifest.root


def parse(output: str, where: str) -> Live | None:
    """``READ_LIVE``'s output: None when the host has no generation yet."""
    if not output.strip():
        return None
    link, path, rest = [*output.split("\n", 2), "", ""][:3]
    match = LINK.fullmatch(link.strip())
    if match is None or not path.startswith("/"):
        raise NixflyError(f"{where}: the live generation's profile link is not nix-env's ({link!r})")
    info, *files = rest.split(FILE_MARK)
    try:
        paths = sbom.parse_path_info(json.loads(info))
    except ValueError:
        raise NixflyError(f"{where}: `nix path-info --json` printed no JSON for {path}") from None
    return Live(int(match[1]), Manifest(path, paths, _locks(paths, files)))


def _locks(paths: dict[str, Any], files: Sequence[str]) -> dict[str, tuple[Package, ...]]:
    """The packages each store path's lock files pin (as ``sbom.lock_packages`` reads them here)."""
    readers = {"bun.lock": sbom.npm_packages, "mix.lock": sbom.hex_packages}
    found: dict[str, set[Package]] = {}
    for section in files:
        name, _, text = section.partition("\n")
        owner = next((p for p in paths if name.startswith(p + "/")), None)
        reader = readers.get(PurePosixPath(name).name)
        if owner is not None and reader is not None:
            found.setdefault(owner, set()).update(reader(text))
    return {
        owner: tuple(sorted(pinned, key=lambda p: (p.ecosystem, p.name, p.version)))
        for owner, pinned in found.items()
    }


def candidate_manifest(s: Settings, here: Runner, candidate: Candidate) -> Manifest | str:
    """The manifest of what this deploy ships (read here), or why there is none to compare."""
    new = candidate.store_path or (os.readlink(s.out_link) if s.out_link.is_symlink() else "")
    if not new:
        return "nothing to compare: no build yet"
    if not os.path.exists(new):
        return f"nothing to compare: {new} was built elsewhere and is not in this machine's store"
    return sbom.manifest_of(here, new)


def read(runner: Runner, app_dir: PurePosixPath, where: str, generation: int = 0) -> Live | None:
    """Generation ``generation`` (0: the live one) under ``app_dir`` on the host ``runner`` runs on, or None
    when there is none: one command (a read)."""
    link = f"profile-{generation}-link" if generation else "profile"
    result = runner.run(
        [
            "sh",
            "-c",
            READ_LIVE,
            "nixfly-live",
            str(app_dir),
            link,
            *nix.argv("path-info", "--json", "--recursive"),
        ],
        mutates=False,
        quiet=True,
        hint=f"`inv status --target …` shows what {where} runs",
    )
    return parse(result.stdout, where)


@dataclass(frozen=True)
class Group:
    """Hosts that run the same closure (each with its own generation number), and the diff they share."""

    hosts: tuple[tuple[str, int], ...]
    store_path: str

    @property
    def label(self) -> str:
        numbers = {n for _, n in self.hosts}
        if len(numbers) == 1:
            return f"{', '.join(h for h, _ in self.hosts)} (generation {numbers.pop()})"
        return ", ".join(f"{h} (generation {n})" for h, n in self.hosts)


def grouped(lives: Sequence[tuple[str, Live]]) -> list[tuple[Group, Manifest]]:
    """Hosts by live closure, in the order the target lists them."""
    by_path: dict[str, list[tuple[str, Live]]] = {}
    for name, live in lives:
        by_path.setdefault(live.store_path, []).append((name, live))
    return [
        (Group(tuple((n, live.generation) for n, live in same), path), same[0][1].manifest)
        for path, same in by_path.items()
    ]


def outcome(
    new: Manifest | str, read: Sequence[tuple[str, Live | NixflyError | None]], *, dry: bool
) -> Outcome:
    """The group's diff step: one diff per live closure, the hosts with nothing live, the hosts not read.

    Its line says each group in short; its table holds each group's diff lines under the group's hosts;
    ``--json`` gives ``table.data``: ``groups`` (hosts, live store path, the whole diff), ``first_deploy``
    (hosts with no generation) and ``unread`` (host, error).
    """
    if isinstance(new, str):
        return skipped(new)
    lives = [(name, live) for name, live in read if isinstance(live, Live)]
    first = [name for name, live in read if live is None]
    unread = [(name, exc.message) for name, exc in read if isinstance(exc, NixflyError)]
    said: list[str] = []
    rows: list[tuple[str, str]] = []
    groups: list[dict[str, Any]] = []
    for group, manifest in grouped(lives):
        changes = diff(manifest, new)
        line = plandiff.summary(changes, _against(group))
        said.append(f"{', '.join(h for h, _ in group.hosts)}: {line}")
        rows += [(group.label if i == 0 else "", text) for i, text in enumerate(changes.lines())]
        groups.append(
            {
                "hosts": [{"host": h, "generation": n} for h, n in group.hosts],
                "live": group.store_path,
                "diff": changes.as_json(),
            }
        )
    if first:
        said.append(f"{', '.join(first)}: no live generation (a first deploy: all of it is new)")
        rows.append((", ".join(first), "no live generation: a first deploy"))
    for name, error in unread:
        said.append(f"{name}: not read ({error})")
        rows.append((name, f"NOT READ: {error}"))
    table = Table(
        "what changes on each host (hosts running the same closure share one diff)",
        ("hosts", "change"),
        tuple(rows),
        data={
            "groups": groups,
            "first_deploy": first,
            "unread": [{"host": h, "error": e} for h, e in unread],
        },
    )
    return (planned if dry else done)("; ".join(said), table)


def _against(group: Group) -> str:
    numbers = sorted({n for _, n in group.hosts})
    return f"generation {numbers[0]}" if len(numbers) == 1 else f"generations {', '.join(map(str, numbers))}"
