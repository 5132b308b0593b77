"""Each host's generations: ``inv releases --target …`` lists them with their receipts, and
``inv diff --target …`` compares two of them.

A host's generations and their receipts are read in one command on it (``nix-env --list-generations``, each
``profile-<N>-link`` and each ``profile-<N>-receipt.json`` beside them: ``receipts``), all hosts at once.
Newest first, as ``inv releases`` lists Fly's releases. ``--json`` gives each receipt whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol

from nixfly import closurediff, console, receipt
from nixfly.config import Settings
from nixfly.console import print_json
from nixfly.errors import NixflyError
from nixfly.hosts import hostdiff
from nixfly.hosts.across import each, failures, one_error
from nixfly.hosts.activate import Activation
from nixfly.hosts.host import Host
from nixfly.hosts.profile import parse_generations
from nixfly.runner import Runner
from nixfly.sbom import Manifest


class Member(Protocol):
    """A host as its releases are read: its name, its connection, where the app lives there (a
    ``Member``, which lists and compares its own generations through this module)."""

    @property
    def name(self) -> str: ...

    @property
    def host(self) -> Host: ...

    @property
    def activation(self) -> Activation: ...


MARK = "\x1f"  # starts each link's and each receipt's section (no receipt or path holds it)
# $1: the app's directory. Nothing when there is no profile yet; else nix-env's list, then
# MARK "link <name> <store path>" per generation and MARK "receipt <name>" + the receipt's text per receipt.
READ_RELEASES = (
    hostdiff.WITH_NIX
    + r"""dir=$1
[ -e "$dir/profile" ] || exit 0
nix-env --profile "$dir/profile" --list-generations || exit
for link in "$dir"/profile-*-link; do
  if [ -L "$link" ]; then printf '\037link %s %s\n' "${link##*/}" "$(readlink "$link")"; fi
done
for f in "$dir"/profile-*-receipt.json; do
  if [ -f "$f" ]; then printf '\037receipt %s\n' "${f##*/}"; cat "$f"; printf '\n'; fi
done
"""
)
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
    result = runner.run(
        ["sh", "-c", READ_RELEASES, "nixfly-releases", str(app_dir)],
        mutates=False,
        quiet=True,
        hint=f"nix-env must be on {where}'s PATH (`inv doctor`)",
    )
    return parse(result.stdout, where)


def of(member: Member) -> list[Release]:
    return read(member.host.runner, member.activation.layout.app_dir, member.name)


def summary(kept: receipt.Receipt | None) -> str:
    """One cell: where the generation came from and how it was vouched for ("-": no receipt)."""
    if kept is None:
        return "-"
    dirty = "+dirty" if kept.dirty else ""
    return f"{kept.revision or '?'}{dirty}, smoke {kept.smoke.result}, finished {kept.finished_at}"


def show(s: Settings, members: Sequence[Member], *, as_json: bool) -> None:
    """Each host's releases as a table (``as_json``: one list, a host's receipts whole); a host that cannot
    be read is named, and the task fails after showing the others."""
    found = each(members, of)
    shown: list[dict[str, Any]] = []
    for member, releases in zip(members, found, strict=True):
        if isinstance(releases, NixflyError):
            console.warn(f"{member.name}: could not read the releases: {releases.message}")
            shown.append({"host": member.name, "error": releases.message})
            continue
        console.table(
            f"{s.app} on {member.name}: releases",
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
    failed = failures(members, found)
    if failed:
        raise one_error(failed, len(members), "could not read the releases")


def between(
    s: Settings, here: Runner, members: Sequence[Member], old: str, new: str, *, as_json: bool
) -> None:
    """``inv diff --target …``: on each host, generation ``old`` (default: the live one) against ``new``
    (default: ./result, the working tree's last build). A number names a generation on each host; anything
    else (a store path, an out-link, an SBOM file) is read here, as ``inv diff`` reads it. Hosts whose two
    sides are the same closures share one diff."""
    from nixfly import manifests

    def generation(text: str) -> int | None:
        """The generation ``text`` names on each host (0: the live one), or None: a closure read here."""
        match = manifests.RELEASE.fullmatch(text)
        return int(match[1]) if match else None

    old_number, new_number = generation(old) if old else 0, generation(new) if new else None
    old_here = manifests.resolve(s, here, old) if old_number is None else None
    new_here = manifests.resolve(s, here, new or manifests.working_tree(s)) if new_number is None else None

    def side(member: Member, number: int | None, fixed: Manifest | None) -> tuple[str, Manifest]:
        if fixed is not None:
            return (old if fixed is old_here else new or s.out_link.name), fixed
        live = hostdiff.read(member.host.runner, member.activation.layout.app_dir, member.name, number or 0)
        if live is None:
            said = f"generation {number}" if number else "live generation"
            raise NixflyError(
                f"{member.name} has no {said}", "`inv releases --target …` lists its generations"
            )
        return f"generation {live.generation}", live.manifest

    found = each(members, lambda m: (side(m, old_number, old_here), side(m, new_number, new_here)))
    failed = failures(members, found)
    if failed:
        raise one_error(failed, len(members), "cannot compare")
    shared: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    manifests_of: dict[tuple[str, str], tuple[Manifest, Manifest]] = {}
    for member, sides in zip(members, found, strict=True):
        assert not isinstance(sides, NixflyError)
        (old_label, before), (new_label, after) = sides
        key = (before.root, after.root)
        shared.setdefault(key, []).append((member.name, old_label, new_label))
        manifests_of[key] = (before, after)
    shown = []
    for key, named in shared.items():
        changes = closurediff.diff(*manifests_of[key])
        shown.append(
            {
                "hosts": [{"host": h, "from": f, "to": t} for h, f, t in named],
                "from": key[0],
                "to": key[1],
                "diff": changes.as_json(),
            }
        )
        if not as_json:
            labels = {(f, t) for _, f, t in named}
            if len(labels) == 1:
                hosts_said = f"{', '.join(h for h, _, _ in named)}: {' → '.join(labels.pop())}"
            else:
                hosts_said = ", ".join(f"{h} ({f} → {t})" for h, f, t in named)
            console.say(f"{hosts_said} ({key[0]} → {key[1]})")
            print("\n".join(changes.lines()))
    if as_json:
        print_json(shown)
