"""``inv releases --target local|ssh://…|<group>``: each host's generations, with the receipt of each.

A host's generations and their receipts are read in one command on it (``nix-env --list-generations``, each
``profile-<N>-link`` and each ``profile-<N>-receipt.json`` beside them: ``receipts``), all hosts at once.
Newest first, as ``inv releases`` lists Fly's releases. ``--json`` gives each receipt whole.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from nixfly import console, receipt
from nixfly.console import print_json
from nixfly.errors import NixflyError
from nixfly.hosts.profile import parse_generations
from nixfly.runner import Runner

if TYPE_CHECKING:
    from nixfly.hosts.fleet import FleetTarget
    from nixfly.hosts.target import HostTarget

MARK = "\x1f"  # starts each link's and each receipt's section (no receipt or path holds it)
# $1: the app's directory. Nothing when there is no profile yet; else nix-env's list, then
# MARK "link <name> <store path>" per generation and MARK "receipt <name>" + the receipt's text per receipt.
READ_RELEASES = r"""dir=$1
[ -e "$dir/profile" ] || exit 0
nix-env --profile "$dir/profile" --list-generations || exit
for link in "$dir"/profile-*-link; do
  if [ -L "$link" ]; then printf '\037link %s %s\n' "${link##*/}" "$(readlink "$link")"; fi
done
for f in "$dir"/profile-*-receipt.json; do
  if [ -f "$f" ]; then printf '\037receipt %s\n' "${f##*/}"; cat "$f"; printf '\n'; fi
done
"""
NUMBER = re.compile(r"profile-(\d+)-(?:link|receipt\.json)")


@dataclass(frozen=True)
class Release:
    """One generation on a host, and its receipt if one was written."""

    generation: int
    created: str
    current: bool
    store_path: str
    receipt: receipt.Receipt | None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "receipt": asdict(self.receipt) if self.receipt else None}


def parse(output: str, where: str) -> list[Release]:
    """``READ_RELEASES``'s output, newest first."""
    listing, *sections = output.split(MARK)
    links: dict[int, str] = {}
    kept: dict[int, receipt.Receipt] = {}
    for section in sections:
        head, _, text = section.partition("\n")
        kind, _, rest = head.partition(" ")
        name, _, target = rest.partition(" ")
        match = NUMBER.fullmatch(name)
        if match is None:
            continue
        if kind == "link":
            links[int(match[1])] = target
        elif kind == "receipt":
            kept[int(match[1])] = receipt.from_json(text, f"{where}:{name}")
    return [
        Release(g.number, g.created, g.current, links.get(g.number, ""), kept.get(g.number))
        for g in reversed(parse_generations(listing))
    ]


def read(runner: Runner, app_dir: PurePosixPath, where: str) -> list[Release]:
    """The generations under ``app_dir`` on the host ``runner`` runs on: one command."""
    if runner.where:
        runner.which("nix-env")  # over SSH: finds Nix off the sessions' PATH (once) for the script's nix-env
    result = runner.run(
        ["sh", "-c", READ_RELEASES, "nixfly-releases", str(app_dir)],
        mutates=False,
        quiet=True,
        hint=f"nix-env must be on {where}'s PATH (`inv doctor`)",
    )
    return parse(result.stdout, where)


def of(member: HostTarget) -> list[Release]:
    return read(member.host.runner, member.activation.layout.app_dir, member.name)


def summary(kept: receipt.Receipt | None) -> str:
    """One cell: where the generation came from and how it was vouched for ("-": no receipt)."""
    if kept is None:
        return "-"
    dirty = "+dirty" if kept.dirty else ""
    return f"{kept.revision or '?'}{dirty}, smoke {kept.smoke.result}, finished {kept.finished_at}"


def show(hosts: FleetTarget, *, as_json: bool) -> None:
    """Each host's releases as a table (``as_json``: one list, a host's receipts whole); a host that cannot
    be read is named, and the task fails after showing the others."""
    from nixfly.hosts.fleet import each, failures, one_error

    found = each(hosts.members, of)
    shown: list[dict[str, Any]] = []
    for member, releases in zip(hosts.members, found, strict=True):
        if isinstance(releases, NixflyError):
            console.warn(f"{member.name}: could not read the releases: {releases.message}")
            shown.append({"host": member.name, "error": releases.message})
            continue
        console.table(
            f"{hosts.s.app} on {member.name}: releases",
            ("generation", "created", "store path", "receipt"),
            [
                (
                    f"{r.generation}{' (current)' if r.current else ''}",
                    r.created,
                    r.store_path,
                    summary(r.receipt),
                )
                for r in releases
            ],
        )
        shown.append({"host": member.name, "releases": [r.as_json() for r in releases]})
    if as_json:
        print_json(shown)
    failed = failures(hosts.members, found)
    if failed:
        raise one_error(failed, len(hosts.members), "could not read the releases")
