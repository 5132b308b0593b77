"""What changes between two closures: the answer to "what does this deploy change?".

Grouped as nvd groups it (version changes, added, removed, then the closure size) and counted per package
the way ``nix store diff-closures`` counts (store paths grouped by package name, versions compared as sets,
a package's size delta shown from 8 KiB on: NixOS/nix src/nix/diff-closures.cc, printClosureDiff). Two
groups neither tool has, because a deploy needs them:

- rebuilt: same name and version, new contents (web's code changed). Only the paths whose own contents
  changed are named; a path that changed only because something it references did (a wrapper, the
  top-level closure) is counted as a dependent, not named, so a one-line change reads as one line.
- npm and hex packages, from the lock files inside each closure (``sbom``).
- a nixpacks build (no closure here, ``sbom.nixpacks_manifest``): its revision, nixpacks config and
  version, old → new.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from nixfly.nix import human_size
from nixfly.sbom import Manifest, Package, StorePath, compare_versions

# nix store diff-closures shows a package's size change only from this many bytes on.
SIZE_SHOWN = 8 * 1024
EMPTY = "∅"  # diff-closures' mark for "no version" on one side


@dataclass(frozen=True)
class Change:
    """One package whose versions differ, or that came or went: ``name old → new``."""

    name: str
    old: tuple[str, ...]
    new: tuple[str, ...]
    size_delta: int = 0

    def mark(self, group: str) -> str:
        """nvd's marks: in ``changed``, U an upgrade and D a downgrade (one version each side, ordered as
        Nix orders versions), C any other change; A for ``added``, R for ``removed``."""
        if group != "changed":
            return "A" if group == "added" else "R"
        if len(self.old) == len(self.new) == 1:
            order = compare_versions(self.old[0], self.new[0])
            return "U" if order < 0 else "D" if order > 0 else "C"
        return "C"

    def line(self, *, arrow: bool = True) -> str:
        """``name: old → new`` (diff-closures' form; ∅ for a side without versions), or, for a package that
        came or went (``arrow=False``), ``name: versions`` under its group's heading, as nvd shows them."""
        if arrow:
            text = f"{self.name}: {_versions(self.old)} → {_versions(self.new)}"
        else:
            text = f"{self.name}: {_versions(self.old or self.new)}"
        return text + (f", {_signed(self.size_delta)}" if abs(self.size_delta) >= SIZE_SHOWN else "")


@dataclass(frozen=True)
class Rebuilt:
    """A package with the same version but new contents, and how many paths changed only through it."""

    name: str
    version: str
    size_delta: int


@dataclass(frozen=True)
class ClosureDiff:
    old_root: str
    new_root: str
    changed: list[Change] = field(default_factory=list)
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    rebuilt: list[Rebuilt] = field(default_factory=list)
    dependents: int = 0  # paths with new hashes only because something they reference changed
    packages: dict[str, dict[str, list[Change]]] = field(default_factory=dict)  # ecosystem → group → changes
    old_paths: int = 0
    new_paths: int = 0
    paths_added: int = 0  # store paths only the new closure has (nvd's "paths added")
    paths_removed: int = 0
    old_size: int = 0
    new_size: int = 0
    build: list[Change] = field(default_factory=list)  # a nixpacks build's revision, config, version

    @property
    def nothing(self) -> bool:
        """No package, path or lock-file entry differs (two closures of the same store paths)."""
        return not (
            self.changed
            or self.added
            or self.removed
            or self.rebuilt
            or self.dependents
            or self.packages
            or self.build
        )

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["nothing_changes"] = self.nothing
        data["size_delta"] = self.new_size - self.old_size
        return data

    def lines(self) -> list[str]:
        """The diff as a person reads it: nvd's groups, one line per package, "Nothing changes" when equal."""
        if self.nothing:
            return ["Nothing changes"]
        out: list[str] = []
        groups = (
            ("Version changes", "changed", self.changed),
            ("Added packages", "added", self.added),
            ("Removed packages", "removed", self.removed),
        )
        for title, group, changes in groups:
            if changes:
                out.append(f"{title}:")
                out += [f"  [{c.mark(group)}] {c.line(arrow=group == 'changed')}" for c in changes]
        if self.rebuilt or self.dependents:
            out.append("Rebuilt (same version, new contents):")
            for item in self.rebuilt:
                size = f", {_signed(item.size_delta)}" if abs(item.size_delta) >= SIZE_SHOWN else ""
                # [*]: nvd has no mark for a rebuild, and its U means an upgrade.
                out.append(f"  [*] {item.name}{f' {item.version}' if item.version else ''}{size}")
            if self.dependents:
                out.append(f"  and {self.dependents} path(s) that only reference what changed")
        for ecosystem, grouped in self.packages.items():
            out.append(f"{ecosystem} packages:")
            for group in ("changed", "added", "removed"):
                out += [
                    f"  [{c.mark(group)}] {c.line(arrow=group == 'changed')}" for c in grouped.get(group, [])
                ]
        if self.build:
            out.append("Nixpacks build:")
            out += [f"  [C] {c.line()}" for c in self.build]
        if not (self.old_paths or self.new_paths):
            return out  # nixpacks on both sides: Fly's builder makes the closure, its size is not known here
        out.append(
            f"Closure size: {self.old_paths} → {self.new_paths} paths ({self.paths_added} added, "
            f"{self.paths_removed} removed), {human_size(self.old_size)} → {human_size(self.new_size)} "
            f"({_signed(self.new_size - self.old_size)})"
        )
        return out


def _versions(versions: tuple[str, ...]) -> str:
    """diff-closures' showVersions: sorted, comma-separated, ε for an empty version."""
    return ", ".join(v or "ε" for v in versions) if versions else EMPTY


def _signed(delta: int) -> str:
    return f"{'+' if delta >= 0 else '-'}{human_size(abs(delta))}"


def _by_package(paths: dict[str, StorePath]) -> dict[str, dict[str, list[StorePath]]]:
    """name → version → store paths (diff-closures' GroupedPaths)."""
    grouped: dict[str, dict[str, list[StorePath]]] = defaultdict(lambda: defaultdict(list))
    for info in paths.values():
        name, version = info.package
        grouped[name][version].append(info)
    return grouped


def _size(versions: dict[str, list[StorePath]]) -> int:
    return sum(p.nar_size for paths in versions.values() for p in paths)


def diff(old: Manifest, new: Manifest) -> ClosureDiff:
    """What changes from ``old`` to ``new``."""
    before, after = _by_package(old.paths), _by_package(new.paths)
    changed: list[Change] = []
    added: list[Change] = []
    removed: list[Change] = []
    rebuilt: list[Rebuilt] = []
    dependents = 0
    fresh = set(new.paths) - set(old.paths)  # paths the old closure does not have
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name, {}), after.get(name, {})
        delta = _size(now) - _size(was)
        gone = tuple(sorted(set(was) - set(now)))
        came = tuple(sorted(set(now) - set(was)))
        if not was:
            added.append(Change(name, (), came, delta))
        elif not now:
            removed.append(Change(name, gone, (), delta))
        elif gone or came:
            changed.append(Change(name, gone, came, delta))
        else:
            for version, paths in now.items():
                for info in paths:
                    if info.path not in fresh:
                        continue
                    if any(ref in fresh for ref in info.references):
                        dependents += 1
                    else:
                        old_size = sum(p.nar_size for p in was[version])
                        rebuilt.append(Rebuilt(name, version, info.nar_size - old_size))
    return ClosureDiff(
        old_root=old.root,
        new_root=new.root,
        changed=changed,
        added=added,
        removed=removed,
        rebuilt=rebuilt,
        dependents=dependents,
        packages=_package_changes(old.packages, new.packages),
        old_paths=len(old.paths),
        new_paths=len(new.paths),
        paths_added=len(fresh),
        paths_removed=len(set(old.paths) - set(new.paths)),
        old_size=old.nar_size,
        new_size=new.nar_size,
        build=_build_changes(dict(old.build), dict(new.build)),
    )


def _build_changes(old: dict[str, str], new: dict[str, str]) -> list[Change]:
    """What differs between two builds nixfly did not see (``sbom.Manifest.build``): ``revision``,
    ``config``, ``version`` (the property names' last word)."""
    return [
        Change(key.rsplit(":", 1)[-1], (old[key],) if key in old else (), (new[key],) if key in new else ())
        for key in sorted({*old, *new})
        if old.get(key) != new.get(key)
    ]


def _package_changes(
    old: tuple[Package, ...], new: tuple[Package, ...]
) -> dict[str, dict[str, list[Change]]]:
    """Per ecosystem (npm, hex): packages whose versions changed, came or went; empty ones left out."""
    out: dict[str, dict[str, list[Change]]] = {}
    for ecosystem in sorted({p.ecosystem for p in (*old, *new)}):
        was: dict[str, set[str]] = defaultdict(set)
        now: dict[str, set[str]] = defaultdict(set)
        for package in old:
            if package.ecosystem == ecosystem:
                was[package.name].add(package.version)
        for package in new:
            if package.ecosystem == ecosystem:
                now[package.name].add(package.version)
        grouped: dict[str, list[Change]] = defaultdict(list)
        for name in sorted(set(was) | set(now)):
            if was[name] == now[name]:
                continue
            key = "added" if not was[name] else "removed" if not now[name] else "changed"
            gone, came = tuple(sorted(was[name] - now[name])), tuple(sorted(now[name] - was[name]))
            grouped[key].append(Change(name, gone, came))
        if grouped:
            out[ecosystem] = dict(grouped)
    return out
