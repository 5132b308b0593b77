"""Which closure ``inv sbom --release N`` and ``inv diff --from X --to Y`` mean, and its manifest.

What nixfly records locally is what can be read locally: the releases of ``inv deploy --target local`` are
generations of ``<state_dir>/local/<app>/profile`` (``hosts.activate``), each a link to its store path,
which the generation keeps alive (a GC root). Fly releases are images; nixfly keeps no closure for them
here, so a Fly release number is refused with what to use instead. Any store path, out-link (``./result``)
or CycloneDX file written by ``inv sbom`` can be named too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from nixfly.config import Settings
from nixfly.errors import NixflyError
from nixfly.runner import Runner
from nixfly.sbom import Manifest, from_json, manifest_of

RELEASE = re.compile(r"v?(\d+)")
STORE = "/nix/store/"


def profile_dir(s: Settings) -> Path:
    """Where the local target keeps the mode's app's generations (``hosts.activate.Layout``)."""
    return s.state_dir / "local" / s.app


def generations(s: Settings) -> dict[int, str]:
    """Recorded local releases: generation number → store path, oldest first."""
    found: dict[int, str] = {}
    directory = profile_dir(s)
    pattern = re.compile(r"profile-(\d+)-link")
    if directory.is_dir():
        for link in directory.iterdir():
            match = pattern.fullmatch(link.name)
            if match and link.is_symlink():
                found[int(match[1])] = os.readlink(link)
    return dict(sorted(found.items()))


def live(s: Settings) -> tuple[int, str] | None:
    """The local release that is live now (the profile's current generation), if any."""
    current = profile_dir(s) / "profile"
    if not current.is_symlink():
        return None
    match = re.fullmatch(r"profile-(\d+)-link", os.readlink(current))
    recorded = generations(s)
    if match is None or int(match[1]) not in recorded:
        return None
    return int(match[1]), recorded[int(match[1])]


def release_path(s: Settings, number: int) -> str:
    """The store path of recorded release ``number``, or an error naming the ones there are."""
    recorded = generations(s)
    if number in recorded:
        return recorded[number]
    have = ", ".join(str(n) for n in recorded) or "none"
    raise NixflyError(
        f"no release {number} of {s.app} is recorded here (local releases: {have})",
        "releases of `inv deploy --target local` are recorded in nixfly.state_dir; Fly releases carry no "
        "closure here: name a store path, an out-link or a saved SBOM instead",
    )


def working_tree(s: Settings) -> str:
    """The store path the mode's out-link (``./result``) points at: the working tree's last build."""
    if not s.out_link.is_symlink():
        raise NixflyError(
            f"no {s.out_link.name} for mode {s.mode.name}: nothing built from the working tree yet",
            f"run `inv build --mode {s.mode.name}` first",
        )
    return os.readlink(s.out_link)


def resolve(s: Settings, runner: Runner, text: str) -> Manifest:
    """The manifest ``text`` names: a release number (``3``, ``v3``), a store path, an out-link or other
    link into the store, or a CycloneDX JSON file."""
    match = RELEASE.fullmatch(text)
    if match:
        return manifest_of(runner, release_path(s, int(match[1])))
    if text.startswith(STORE):
        return manifest_of(runner, text)
    path = s.root / text
    if path.is_symlink() and os.readlink(path).startswith(STORE):
        return manifest_of(runner, os.readlink(path))
    if path.is_file():
        return from_json(path.read_text(), text)
    raise NixflyError(
        f"{text!r} names no release, store path or SBOM file",
        "use a local release number (e.g. 3), /nix/store/…, an out-link such as result, or a file "
        "written by `inv sbom`",
    )


def default_from(s: Settings, runner: Runner) -> Manifest:
    """What is live: the local target's current release of the mode's app."""
    found = live(s)
    if found is None:
        raise NixflyError(
            f"nothing of {s.app} is recorded as live here (no `inv deploy --target local` yet)",
            "name what to compare with: --from N (a release), a store path or a saved SBOM",
        )
    return manifest_of(runner, found[1])
