"""A rollout to a group of three hosts against the same three hosts deployed one at a time (not a test: it
reports medians and counts, and never fails on a time).

    python bench/fleet.py [RUNS]        # RUNS per measure, default 3

The hosts are tests/helpers/sshd.py's fleet: three sshd on 127.0.0.1, each with its own HOME and network
namespace, one shared Nix store. The app is the tests' tiny flake in a git checkout, built for real by
`inv deploy` (a fresh nonce per bench run, so the first build is a real one). Every deploy switches every
host to the other version (v1 ⇄ v3), so each one copies, activates and health-checks for real. A `nix`
wrapper first on PATH counts the nix builds and copies each deploy runs.

Reported:
1. `inv deploy --target web` (the group of three) with --batch 1 and with --batch 3: median wall time;
2. the sum of the per-host times: the same change deployed host by host, `inv deploy --target ssh://hostN`
   three times, their wall times summed (median);
3. nix builds per deploy (target: 1 when the closure changed, however many hosts) and nix copies (one per
   host), and the copy step of the group against the three single-host copy steps summed.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.procs import free_port  # noqa: E402
from helpers.project import GIT_ENV, offline_nix_options  # noqa: E402
from helpers.sshd import FLY_TOML, Fleet, kill_session, running_fleet, tiny_flake  # noqa: E402

HEALTH = {"timeout": 10, "interval": 0.1, "max_interval": 0.5, "http_timeout": 2}
COUNTER = """#!/bin/sh
printf '%s\\n' "$*" >> "$NIXFLY_BENCH_NIX_LOG"
exec {nix} "$@"
"""


class Bench:
    def __init__(self, tmp: Path, fleet: Fleet) -> None:
        self.fleet = fleet
        self.root = tmp / "project"
        tiny_flake(self.root, uuid.uuid4().hex[:12])
        shutil.copy(REPO / "tasks.py", self.root / "tasks.py")
        (self.root / "fly-integrated.toml").write_text(FLY_TOML.replace("{port}", str(free_port())))
        (self.root / ".gitignore").write_text(".env.fly\n.nixfly/\nresult*\ninvoke.yaml\n")
        (self.root / ".env.fly").write_text("CLAUDE_ACCESS_TOKEN='bench-not-a-secret'\n")
        self.attr("v1")
        env = {**os.environ, **GIT_ENV}
        subprocess.run(["git", "init", "-q", str(self.root)], check=True, env=env)
        subprocess.run(["git", "-C", str(self.root), "add", "-A"], check=True, env=env)
        subprocess.run(["git", "-C", str(self.root), "commit", "-qm", "bench"], check=True, env=env)
        shims = tmp / "shims"
        shims.mkdir()
        real_nix = shutil.which("nix")
        if real_nix is None:
            raise SystemExit("nix is not installed")
        (shims / "nix").write_text(COUNTER.format(nix=real_nix))
        (shims / "nix").chmod(0o755)
        self.nix_log = tmp / "nix-calls.log"
        self.env = {
            **os.environ,
            "PATH": f"{shims}:{os.environ['PATH']}",
            "PYTHONPATH": str(REPO),
            "NO_COLOR": "1",
            "NIXFLY_SSH_CONFIG": str(fleet.ssh_config),
            "NIXFLY_NIX_OPTIONS": os.environ.get("NIXFLY_NIX_OPTIONS") or offline_nix_options(),
            "NIXFLY_BENCH_NIX_LOG": str(self.nix_log),
        }

    def attr(self, version: str) -> None:
        """What the mode builds (v1 or v3), and the group (invoke.yaml is git-ignored: not in the flake)."""
        group = "".join(f"      - {host.url}\n" for host in self.fleet.hosts)
        health = "".join(f"    {key}: {value}\n" for key, value in HEALTH.items())
        (self.root / "invoke.yaml").write_text(
            f"nixfly:\n  groups:\n    web:\n{group}  health:\n{health}"
            f"  modes:\n    integrated:\n      flake_attr: {version}\n"
        )

    def deploy(self, target: str, *args: str) -> tuple[float, dict[str, Any], list[str]]:
        """One `inv deploy --json`: its wall time, its summary, and the nix commands it ran."""
        self.nix_log.write_text("")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "invoke", "deploy", "--json", "--skip-smoke", "--target", target, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"deploy --target {target} failed:\n{done.stderr}")
        return seconds, json.loads(done.stdout), self.nix_log.read_text().splitlines()

    def stop(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "invoke", "stop", "--target", "web"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            timeout=120,
        )
        for host in self.fleet.hosts:
            kill_session(host.state / "run" / "oneshot.pid")


def step_seconds(summary: dict[str, Any], name: str) -> float:
    return sum(s["seconds"] for s in summary["steps"] if s["step"] == name)


def count(calls: list[str], word: str) -> int:
    return sum(1 for call in calls if f" {word} " in f" {call} ")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, running_fleet(Path(tmp) / "fleet", 3) as fleet:
        bench = Bench(Path(tmp), fleet)
        try:
            first_s, _, first_nix = bench.deploy("web")
            rows.append(("first group deploy (3 hosts, --batch 1, real nix build)", f"{first_s:.1f} s"))
            rows.append(
                ("  nix builds / nix copies", f"{count(first_nix, 'build')} / {count(first_nix, 'copy')}")
            )
            versions = iter(["v3", "v1"] * (3 * runs))
            group_copy = []
            for batch in ("1", "3"):
                walls, builds, copies = [], [], []
                for _ in range(runs):
                    bench.attr(next(versions))
                    wall, summary, nix_calls = bench.deploy("web", "--batch", batch)
                    walls.append(wall)
                    group_copy.append(step_seconds(summary, "copy"))
                    builds.append(count(nix_calls, "build"))
                    copies.append(count(nix_calls, "copy"))
                rows.append(
                    (f"group deploy, --batch {batch}: wall time (median of {runs})", f"{median(walls)} s")
                )
                rows.append(
                    ("  nix builds / nix copies per deploy (most seen)", f"{max(builds)} / {max(copies)}")
                )
            alone, alone_copy, alone_builds = [], [], []
            for _ in range(runs):
                bench.attr(next(versions))
                deploys = [bench.deploy(host.url) for host in fleet.hosts]
                alone.append(sum(wall for wall, _, _ in deploys))
                alone_copy.append(sum(step_seconds(summary, "copy") for _, summary, _ in deploys))
                alone_builds.append(sum(count(calls, "build") for _, _, calls in deploys))
            rows.append(
                (
                    f"host by host: three `inv deploy --target ssh://…`, summed (median of {runs})",
                    f"{median(alone)} s",
                )
            )
            rows.append(("  nix builds across the three (most seen)", str(max(alone_builds))))
            rows.append(
                (
                    "copy step: 3 hosts at once / the three single-host copies summed (medians)",
                    f"{median(group_copy)} s / {median(alone_copy)} s",
                )
            )
        finally:
            bench.stop()
    print("| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}"


if __name__ == "__main__":
    main()
