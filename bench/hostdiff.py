"""What the plan's diff costs a group of three hosts (not a test: it reports medians and counts, never fails).

    python bench/hostdiff.py [OLD NEW]      # two store paths (default: two small ones added here)

The hosts are tests/helpers/sshd.py's fleet: three sshd on 127.0.0.1, each with its own HOME, one shared
Nix store. Host 1 runs NEW, hosts 2 and 3 run OLD (a profile generation each, as a deploy leaves it), so the
plan has two diffs to show. Reported, as medians of RUNS:
1. SSH commands per host for the diff step: in a deploy (the connection open, the host's records read, as
   the lock step leaves it) and in a dry-run (which opens one connection per host for this read alone);
2. the diff step's time for the three hosts, both ways, and the same three diffs computed from this
   machine's store (what the single-host step does when the old closure is here): the ratio;
3. the receipt's size for NEW (as a host keeps it, fly toml included).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's nixfly, not an installed one

from helpers.fakes import checkout  # noqa: E402
from helpers.sshd import running_fleet  # noqa: E402

from nixfly import config, receipt, sbom  # noqa: E402
from nixfly.closurediff import diff  # noqa: E402
from nixfly.hosts import FleetTarget  # noqa: E402
from nixfly.nix import human_size  # noqa: E402
from nixfly.remote import RemoteRunner  # noqa: E402
from nixfly.runner import Runner  # noqa: E402
from nixfly.target import Candidate, parse_target  # noqa: E402

RUNS = 5
CALLS: Counter[str] = Counter()


def counted(execute: Any) -> Any:
    """RemoteRunner._execute, counting each command per host: one command is one SSH round trip."""

    def run(self: RemoteRunner, argv: tuple[str, ...], **kw: Any) -> Any:
        CALLS[str(self.endpoint)] += 1
        return execute(self, argv, **kw)

    return run


def added(tmp: Path, name: str, valibot: str) -> str:
    content = tmp / name
    (content / "bin").mkdir(parents=True)
    (content / "bin" / "start-oneshot").write_text(f"#!/bin/sh\necho {name}\n")
    lock = {"lockfileVersion": 1, "packages": {"valibot": [f"valibot@{valibot}", "", {}, "sha512-x=="]}}
    (content / "bun.lock").write_text(json.dumps(lock))
    argv = ["nix-store", "--add", str(content)]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(old: str, new: str, tmp: Path) -> None:
    RemoteRunner._execute = counted(RemoteRunner._execute)  # type: ignore[method-assign]
    with running_fleet(tmp / "fleet", 3) as fleet:
        os.environ["NIXFLY_SSH_CONFIG"] = str(fleet.ssh_config)
        for host, path in zip(fleet.hosts, (new, old, old), strict=True):
            profile = host.state / "oneshot" / "profile"
            profile.parent.mkdir(parents=True)
            subprocess.run(["nix-env", "--profile", str(profile), "--set", path], check=True)
        root = checkout(tmp / "project")
        targets = {"targets": {"web": [h.url for h in fleet.hosts]}}
        candidate = Candidate(store_path=new)

        s = config.resolve(targets, root, mode="integrated")
        group = FleetTarget(s, parse_target("web", s.targets))
        try:
            for member in group.members:
                member.activation.records()  # what the lock step reads: the connection is open, $HOME known
            CALLS.clear()
            outcome = group.plan_diff(candidate)
            deploy_calls = dict(CALLS)
            deploy_times = [timed(lambda: group.plan_diff(candidate)) for _ in range(RUNS)]
        finally:
            group.close()

        dry = config.resolve(targets, root, mode="integrated", dry_run=True)
        dry_times, dry_calls = [], []
        for _ in range(RUNS):
            planned = FleetTarget(dry, parse_target("web", dry.targets))
            CALLS.clear()
            dry_times.append(timed(lambda: planned.plan_diff(candidate)))  # noqa: B023 (called at once)
            dry_calls.append(max(CALLS.values()))
            planned.close()

        here = Runner()
        local_times = [
            timed(
                lambda: [
                    diff(sbom.manifest_of(here, p), sbom.manifest_of(here, new)) for p in (new, old, old)
                ]
            )
            for _ in range(RUNS)
        ]
    manifest = sbom.manifest_of(Runner(), new)
    kept = receipt.Receipt(
        app="oneshot",
        mode="integrated",
        target=fleet.hosts[0].url,
        release=2,
        revision="8601514",
        dirty=False,
        closure=new,
        sbom_digest=receipt.digest_of(sbom.to_json(manifest)),
        smoke=receipt.Smoke(new, "passed", "tests/smoke -m integrated"),
        started_at=receipt.now(),
        finished_at=receipt.now(),
        fly_toml=(REPO / "fly-integrated.toml").read_text(),
    )
    assert outcome.table is not None
    groups = outcome.table.as_json()["data"]["groups"]
    print(f"closures: {old} → {new} ({len(manifest.paths)} paths, {human_size(manifest.nar_size)})")
    print(f"diff step: {outcome.detail}")
    print("| measure | result |\n|---|---|")
    print(f"| diffs shown for 3 hosts (hosts on one closure share one) | {len(groups)} |")
    print(f"| SSH commands per host for the diff, deploy | {sorted(set(deploy_calls.values()))} |")
    print(f"| SSH commands per host for the diff, dry-run (connection opened for it) | {max(dry_calls)} |")
    deploy_ms, dry_ms = statistics.median(deploy_times) * 1000, statistics.median(dry_times) * 1000
    local_ms = statistics.median(local_times) * 1000
    print(f"| diff step, 3 hosts, deploy (median of {RUNS}) | {deploy_ms:.0f} ms |")
    print(f"| diff step, 3 hosts, dry-run incl. SSH connect (median of {RUNS}) | {dry_ms:.0f} ms |")
    print(f"| the 3 diffs from this store, no SSH (median of {RUNS}) | {local_ms:.0f} ms |")
    print(f"| ratio deploy / from this store | {deploy_ms / local_ms:.1f}x |")
    print(f"| receipt size (fly toml included) | {human_size(len(kept.to_json()))} |")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as work:
        if len(sys.argv) > 2:
            old_path, new_path = sys.argv[1], sys.argv[2]
        else:
            old_path = added(Path(work), "oneshot-integrated-0.1.0", "1.4.0")
            new_path = added(Path(work) / "b", "oneshot-integrated-0.1.0", "1.5.0")
        main(old_path, new_path, Path(work))
