"""Deploys to the flyctl simulator with every flyctl call taking 1 s, as a real API round trip roughly does.

    python bench/deploys.py [--rev REV] [--latency S]     # or: nox -s bench -- bench/deploys.py

For each builder (nixpacks: Fly builds; image: Nix builds the image, skopeo pushes it to a real registry on
loopback) it runs a first deploy and then a no-change redeploy, and reports for each: the wall time of
`inv deploy`, the flyctl calls, and the round trips on the critical path: the calls merged where they
overlapped in time (from the simulator's call log), i.e. how many 1 s waits the deploy sat through one after
another. Before the engine read Fly concurrently every call was its own round trip, so the call count is the
old sequential count. The issue's goal: a no-change redeploy in at most 3 s at 1 s latency; a first deploy no
slower than before.

Build and smoke are skipped (--skip-build --skip-smoke with a stand-in ./result): they run here, whatever the
latency; the image builder still builds its image with Nix (the push needs it; the redeploy finds it built).
--rev measures another commit's nixfly (e.g. 07c1bc0, before the engine) against the same simulator.
A benchmark reports; it never fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from flyctl_sim import control  # noqa: E402
from helpers.project import CANARY, GIT_ENV, Project, copy_checkout, offline_nix_options  # noqa: E402
from helpers.registry import running_registry  # noqa: E402

FAST = ("--skip-build", "--skip-smoke")
MUTATING = ("apps create", "volumes create", "secrets import", "secrets set", "deploy")
GOAL_SECONDS = 3.0


@dataclass(frozen=True)
class Measured:
    wall: float
    calls: list[dict]
    steps: list[dict]  # `inv deploy --json`'s summary: each step's status and seconds

    @property
    def commands(self) -> list[str]:
        return [c.get("command") or "?" for c in self.calls]

    @property
    def round_trips(self) -> int:
        """Calls merged where their [start, end] overlapped: the sequential waits on the critical path."""
        spans = sorted((c["ts"], c["ts"] + c.get("duration", 0.0)) for c in self.calls)
        trips, end = 0, float("-inf")
        for start, stop in spans:
            if start >= end:
                trips += 1
                end = stop
            else:
                end = max(end, stop)
        return trips

    def step_times(self) -> str:
        """The steps that took a tenth of a second or more, in order: where the wall time went."""
        slow = [f"{s['step']} {s['seconds']:.1f}" for s in self.steps if s["seconds"] >= 0.1]
        return ", ".join(slow) or "none"

    def describe(self) -> str:
        counts = Counter(self.commands)
        return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in sorted(counts.items()))


def checkout(dest: Path, rev: str) -> None:
    """This working tree (as copy_checkout makes it), or commit ``rev`` of the repository."""
    if not rev:
        copy_checkout(dest)
        return
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", f"bench at {rev}"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, env=env)


@contextmanager
def project_in(tmp: Path, *, rev: str, latency: float, builder: str, registry: str = "") -> Iterator[Project]:
    root = tmp / "checkout"
    root.mkdir(parents=True)
    checkout(root, rev)
    sim = control.init(tmp / "sim")
    server = control.start_health_server(sim)
    extra = f'  registry: "{registry}"\n' if registry else ""
    (root / "invoke.yaml").write_text(
        f"nixfly:\n  builder: {builder}\n{extra}"
        "  health:\n    timeout: 60\n    interval: 0.2\n    max_interval: 1\n    http_timeout: 2\n"
        f'  modes:\n    integrated:\n      health_url: "{server.url_template}"\n'
    )
    (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in CANARY.items()))
    store = tmp / "store" / "0123456789abcdfghijklmnpqrsvwxyz-oneshot-integrated"
    (store / "bin").mkdir(parents=True)
    (root / "result").symlink_to(store)
    env = {
        **control.env(sim),
        **GIT_ENV,
        "NO_COLOR": "1",
        "FLYCTL_SIM_LATENCY": str(latency),
        "NIXFLY_NIX_OPTIONS": os.environ.get("NIXFLY_NIX_OPTIONS") or offline_nix_options(),
    }
    try:
        yield Project(root, sim, env)
    finally:
        server.stop()


def deploy(project: Project, *args: str) -> Measured:
    before = len(project.flyctl_calls())
    started = time.perf_counter()
    result = project.inv("deploy", *FAST, *args, "--json")
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"inv deploy {' '.join(args)} failed:\n{result.stderr}")
    return Measured(wall, project.flyctl_calls()[before:], json.loads(result.stdout)["steps"])


def first_and_again(project: Project, *args: str) -> tuple[Measured, Measured]:
    return deploy(project, *args), deploy(project, *args)


def rows(builder: str, first: Measured, again: Measured) -> list[tuple[str, str]]:
    changes = [c for c in again.commands if c in MUTATING]
    goal = "met" if again.wall <= GOAL_SECONDS else "NOT met"
    return [
        (f"{builder}: first deploy", f"{first.wall:.1f} s"),
        ("  flyctl calls (each was a round trip before)", f"{len(first.calls)}: {first.describe()}"),
        ("  round trips on the critical path", str(first.round_trips)),
        ("  steps taking ≥ 0.1 s (seconds)", first.step_times()),
        (f"{builder}: no-change redeploy (goal ≤ {GOAL_SECONDS:g} s: {goal})", f"{again.wall:.1f} s"),
        ("  flyctl calls", f"{len(again.calls)}: {again.describe()}"),
        ("  round trips on the critical path", str(again.round_trips)),
        ("  steps taking ≥ 0.1 s (seconds)", again.step_times()),
        ("  creates / secrets / deploys (target 0)", str(len(changes))),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="", help="measure this commit's nixfly (default: the working tree)")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds every flyctl call takes (1)")
    options = parser.parse_args()
    found: list[tuple[str, str]] = []
    knobs = {"rev": options.rev, "latency": options.latency}
    with tempfile.TemporaryDirectory() as tmp:
        with project_in(Path(tmp) / "nixpacks", builder="nixpacks", **knobs) as p:
            found += rows("nixpacks", *first_and_again(p))
        with (
            running_registry(Path(tmp) / "registry") as registry,
            project_in(Path(tmp) / "image", builder="image", registry=registry.host, **knobs) as p,
        ):
            found += rows("image", *first_and_again(p))
    where = f"nixfly at {options.rev}" if options.rev else "nixfly (working tree)"
    print(f"\n## Deploys to the flyctl simulator, {options.latency:g} s per flyctl call, {where}\n")
    print("| measure | result |\n|---|---|")
    for name, value in found:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
