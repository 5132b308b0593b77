"""The diff in every plan: what a deploy changes against the live release, as one step of its summary.

The closures are compared by ``closurediff`` (nvd's groups, ``nix store diff-closures``' counting). The step's
line says it in short ("Nothing changes against v3", or the counts); its table holds the diff's lines, and
``--json`` gives the whole diff (``ClosureDiff.as_json``) under the step's ``table.data``.
"""

from __future__ import annotations

from nixfly import console
from nixfly.closurediff import ClosureDiff, diff
from nixfly.console import print_json
from nixfly.nix import human_size
from nixfly.pipeline import Outcome, Table, done, planned
from nixfly.sbom import Manifest


def summary(changes: ClosureDiff, against: str) -> str:
    """One line: what changes against ``against`` (e.g. ``v3``), or that nothing does."""
    if changes.nothing:
        return f"Nothing changes against {against}"
    counts = [
        f"{len(group)} {name}"
        for name, group in (
            ("changed", changes.changed),
            ("added", changes.added),
            ("removed", changes.removed),
            ("rebuilt", changes.rebuilt),
        )
        if group
    ]
    packages = sum(len(g) for grouped in changes.packages.values() for g in grouped.values())
    if packages:
        counts.append(f"{packages} {'/'.join(changes.packages)} package change(s)")
    if changes.build:
        counts.append(f"nixpacks build: {', '.join(c.name for c in changes.build)} changed")
    if not (changes.old_paths or changes.new_paths):
        return f"against {against}: {', '.join(counts)}"
    delta = changes.new_size - changes.old_size
    signed = f"{'+' if delta >= 0 else '-'}{human_size(abs(delta))}"
    size = f"closure {human_size(changes.old_size)} → {human_size(changes.new_size)} ({signed})"
    return f"against {against}: {', '.join(counts) or 'only dependents rebuilt'}; {size}"


def outcome(changes: ClosureDiff, against: str, *, dry: bool) -> Outcome:
    """The plan's diff step: the line, and the diff's own lines as its table (the whole diff in --json)."""
    table = Table(
        f"what changes against {against}",
        ("change",),
        tuple((line,) for line in changes.lines()),
        data=changes.as_json(),
    )
    return (planned if dry else done)(summary(changes, against), table)


def show(before: Manifest, after: Manifest, *, as_json: bool) -> None:
    """``inv diff``: the two closures' diff, as nvd prints it (``as_json``: the whole diff, one document)."""
    changes = diff(before, after)
    if as_json:
        print_json(changes.as_json())
        return
    console.say(f"{before.root} → {after.root}")
    print("\n".join(changes.lines()))
