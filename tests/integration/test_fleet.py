"""A group of hosts as one target, against three real sshd on 127.0.0.1 playing three hosts.

Each host has its own sshd (port, host key), its own HOME (so its own nixfly state: profile, records, lock,
log) and its own network namespace for everything run over its SSH sessions (so the app's port is free on
each, as on three machines). The Nix store is this machine's, one store shared by the three "hosts": the
closure is already there, so each host's one ``nix-store --check-validity`` says so and no ``nix copy`` runs
(as for an unchanged redeploy on real machines; tests/unit/test_closure.py holds the copies' argv).

The tasks run as a user runs them (``inv …`` in a subprocess, in a small project with nixfly's tasks.py),
and the tests read ``inv deploy --json`` and ``inv status --json``: per-host outcomes are the pipeline's
steps (``activate <host>``, ``verify <host>``, ``rollback <host>``), what each host runs is its status.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.project import GIT_ENV, REPO, require
from helpers.sshd import (
    FLY_TOML,
    SICK,
    Fleet,
    FleetHost,
    closed_port,
    free_port,
    kill_session,
    nix_build,
    running_fleet,
    tiny_flake,
)

pytestmark = [pytest.mark.nix, pytest.mark.slow]

SECRET = "canary-fleet-4a7e19"
HEALTH = {"timeout": 6, "interval": 0.1, "max_interval": 0.5, "http_timeout": 2}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """version → store path of the tiny app (v1 and v3 healthy; v2 answers 500 on /health)."""
    flake = tiny_flake(tmp_path_factory.mktemp("tiny-flake"), "fleet")
    return dict(
        zip(["v1", "v2", "v3"], nix_build(f"path:{flake}", ["v1", "v2", "v3"], flake / "result"), strict=True)
    )


@dataclass
class Project:
    """A small project deploying the tiny app with nixfly's own tasks.py; ``web`` names the three hosts."""

    root: Path
    fleet: Fleet
    env: dict[str, str]

    def inv(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    def deploy(self, store_path: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        """``inv deploy --json`` of ``store_path`` (as ./result; no build, no smoke): the run, its summary."""
        link = self.root / "result"
        link.unlink(missing_ok=True)
        link.symlink_to(store_path)
        done = self.inv("deploy", "--json", "--skip-build", "--skip-smoke", *args)
        return done, json.loads(done.stdout)

    def status(self, target: str = "web") -> list[dict[str, Any]]:
        done = self.inv("status", "--json", "--target", target)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def live(self) -> list[int | None]:
        """The live generation of each host, in order (None: nothing live)."""
        return [(host["live"] or {}).get("generation") for host in self.status()]

    def generations(self) -> list[list[int]]:
        return [[g["generation"] for g in host["generations"]] for host in self.status()]


def step(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in summary["steps"] if s["step"] == name)


def steps(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(step, status) after the shared steps (preflight … bundle), in order."""
    shared = {"preflight", "lock", "build", "smoke", "bundle"}
    return [(s["step"], s["status"]) for s in summary["steps"] if s["step"] not in shared]


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    require("ssh")
    with running_fleet(tmp_path / "fleet", 3) as hosts:
        monkeypatch.setenv("NIXFLY_SSH_CONFIG", str(hosts.ssh_config))
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the fixture's key may be offered
        yield hosts


@pytest.fixture
def project(tmp_path: Path, fleet: Fleet) -> Iterator[Project]:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "tasks.py", root / "tasks.py")
    # The same port on every host: each has a loopback of its own.
    (root / "fly-integrated.toml").write_text(FLY_TOML.replace("{port}", str(free_port())))
    (root / ".env.fly").write_text(f"CLAUDE_ACCESS_TOKEN='{SECRET}'\n")
    group = "".join(f"      - {host.url}\n" for host in fleet.hosts)
    health = "".join(f"    {key}: {value}\n" for key, value in HEALTH.items())
    (root / "invoke.yaml").write_text(f"nixfly:\n  groups:\n    web:\n{group}  health:\n{health}")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),  # this checkout's nixfly, whatever is installed
        "NO_COLOR": "1",
        "NIXFLY_SSH_CONFIG": str(fleet.ssh_config),
    }
    made = Project(root, fleet, env)
    try:
        yield made
    finally:
        try:
            made.inv("stop", "--target", "web")
        finally:
            for host in fleet.hosts:
                kill_session(host.state / "run" / "oneshot.pid")


def foreign_lock(host: FleetHost, pid: int) -> None:
    """The app's lock on ``host``, as another deploy (process ``pid`` of this machine) leaves it there."""
    holder = {
        "who": "ci",
        "host": socket.gethostname(),
        "pid": pid,
        "since": "2024-05-01T12:00:00+00:00",
        "revision": "abc1234",
        "command": "deploy --mode integrated --target web",
    }
    lock_dir = host.state / "oneshot" / "deploy.lock"
    lock_dir.mkdir(parents=True)
    (lock_dir / "holder.json").write_text(json.dumps(holder) + "\n")


def test_rollout_batch_of_one_then_of_three_then_nothing_to_do(project, fleet, tiny):
    hosts = [h.endpoint for h in fleet.hosts]
    first, summary = project.deploy(tiny["v1"], "--target", "web", "--batch", "1")
    assert first.returncode == 0, first.stderr
    assert steps(summary) == [
        ("host locks", "done"),
        ("diff", "done"),
        ("copy", "skipped"),
        *[(f"{step} {host}", "done") for host in hosts for step in ("activate", "verify")],
        ("receipts", "done"),
    ]
    assert step(summary, "copy")["detail"] == "3 of 3 hosts already had it"
    assert step(summary, "diff")["table"]["data"]["first_deploy"] == hosts
    # Each host's receipt, beside its generation on that host, named in the summary.
    written = step(summary, "receipts")["table"]["rows"]
    assert [(r["host"], r["generation"], r["this run"]) for r in written] == [
        (h, 1, "written") for h in hosts
    ]
    assert all(r["receipt"].endswith("/oneshot/profile-1-receipt.json") for r in written)
    assert all((h.state / "oneshot" / "profile-1-receipt.json").is_file() for h in fleet.hosts)
    shown = project.status()
    assert [h["host"] for h in shown] == hosts
    assert all(h["health"]["healthy"] and h["live"]["store_path"] == tiny["v1"] for h in shown)
    port = shown[0]["live"]["port"]
    # Three hosts, three processes, each answering on its own loopback with its own volume.
    assert [h.get(port) for h in fleet.hosts] == [f"v1 {h.state}/volumes/oneshot_data\n" for h in fleet.hosts]
    assert len({h["pid"] for h in shown}) == 3
    assert SECRET not in first.stderr

    second, summary = project.deploy(tiny["v3"], "--target", "web", "--batch", "3")
    assert second.returncode == 0, second.stderr
    # One batch: three hosts switched at once, then health-gated at once; each host's outcome in the detail.
    assert steps(summary)[3:] == [
        (f"activate {', '.join(hosts)}", "done"),
        (f"verify {', '.join(hosts)}", "done"),
        ("receipts", "done"),
    ]
    verified = summary["steps"][-2]["detail"].split("; ")
    assert [d.split(":")[0] for d in verified] == ["generation 2 healthy"] * 3
    assert project.live() == [2, 2, 2]
    assert [h.get(port).split()[0] for h in fleet.hosts] == ["v3"] * 3
    # The rollout ends with a table of every host, shown after the summary and in --json.
    assert "oneshot on web: per host" in second.stderr and second.stderr.count("deployed, healthy") == 3
    table = summary["steps"][-2]["table"]
    assert [(row["host"], row["after"], row["result"]) for row in table["rows"]] == [
        (host, "generation 2", "deployed, healthy") for host in hosts
    ]

    third, summary = project.deploy(tiny["v3"], "--target", "web", "--batch", "2")
    assert third.returncode == 0, third.stderr
    # Unchanged means untouched: no host is copied to (0 `nix copy`), and the summary says why.
    assert ("copy", "skipped") in steps(summary) and "copy --to" not in third.stderr
    assert step(summary, "copy")["detail"] == "3 of 3 hosts already had it"
    assert [s for s in steps(summary) if s[0].startswith("activate ")] == [
        (f"activate {hosts[0]}, {hosts[1]}", "skipped"),
        (f"activate {hosts[2]}", "skipped"),
    ]
    assert project.generations() == [[1, 2]] * 3
    # Nothing changed: the plan says so, and no receipt is written again.
    assert [g["diff"]["nothing_changes"] for g in step(summary, "diff")["table"]["data"]["groups"]] == [True]
    assert step(summary, "receipts")["status"] == "skipped"


def test_health_failure_on_host_2_rolls_back_host_1_and_leaves_host_3(project, fleet, tiny):
    h1, h2, h3 = (h.endpoint for h in fleet.hosts)
    assert project.deploy(tiny["v1"], "--target", "web")[0].returncode == 0
    (fleet.hosts[1].home / SICK).write_text("v3\n")  # host 2 answers 500 on v3 only

    failed, summary = project.deploy(tiny["v3"], "--target", "web", "--batch", "1")
    assert failed.returncode == 1
    assert not summary["ok"]
    assert steps(summary) == [
        ("host locks", "done"),
        ("diff", "done"),
        ("copy", "skipped"),
        (f"activate {h1}", "done"),
        (f"verify {h1}", "done"),
        (f"activate {h2}", "done"),
        (f"verify {h2}", "failed"),
        (f"rollback {h2}, {h1}", "done"),
        (f"activate {h3}", "not run"),
        (f"verify {h3}", "not run"),
        ("receipts", "not run"),
    ]
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: oneshot on {h2} is not healthy after 6s") and "→ 500" in error
    assert (
        f"rolled back to the previous generation, healthy again: {h2} (generation 1), {h1} (generation 1)"
        in error
    )
    assert f"not reached, left as they were: {h3}" in error
    assert error.endswith(f"— `inv logs --target ssh://{h2}` shows its output")
    shown = project.status()
    assert project.live() == [1, 1, 1] and all(h["health"]["healthy"] for h in shown)
    assert [h["live"]["store_path"] for h in shown] == [tiny["v1"]] * 3
    # Hosts 1 and 2 made generation 2 and went back; host 3 never saw it.
    assert project.generations() == [[1, 2], [1, 2], [1]]
    assert [g["healthy"] for g in shown[0]["generations"]] == [True, True]  # host 1's v3 passed its check
    assert [g["healthy"] for g in shown[1]["generations"]] == [True, False]


def test_held_lock_on_host_3_stops_the_rollout_before_anything_changes(project, fleet, tiny):
    h3 = fleet.hosts[2].endpoint
    assert project.deploy(tiny["v1"], "--target", "web")[0].returncode == 0
    foreign_lock(fleet.hosts[2], os.getpid())  # this test's own process: alive

    refused, summary = project.deploy(tiny["v3"], "--target", "web")
    assert refused.returncode == 1
    assert steps(summary)[:3] == [
        ("host locks", "failed"),
        ("diff", "not run"),
        ("copy", "not run"),
    ]
    error = refused.stderr.strip().splitlines()[-1]
    assert f"another deploy holds the lock of oneshot on {h3}: ci@" in error
    assert (
        f"(pid {os.getpid()}, since 2024-05-01T12:00:00+00:00, git abc1234)" in error
        and "no host was changed" in error
    )
    assert project.generations() == [[1], [1], [1]]
    # The locks taken on hosts 1 and 2 were given back; host 3's holder keeps its own.
    assert [(h.state / "oneshot" / "deploy.lock").exists() for h in fleet.hosts] == [False, False, True]

    shown = project.inv("lock.status", "--target", "web")
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stderr.splitlines() if "127.0.0.1" in line]
    assert [row.split("|")[2].strip() for row in rows] == ["free", "free", "held"]
    kept = project.inv("lock.release", "--target", "web")
    assert (
        kept.returncode == 1
        and f"kept the lock: the deploy lock of oneshot on {h3} belongs to ci@" in kept.stderr
    )
    released = project.inv("lock.release", "--target", fleet.hosts[2].url, "--force")
    assert released.returncode == 0, released.stderr
    assert not (fleet.hosts[2].state / "oneshot" / "deploy.lock").exists()

    # A lock whose process is gone (on this machine) is stale: replaced, with a warning.
    gone = subprocess.Popen(["true"])
    gone.wait()
    foreign_lock(fleet.hosts[2], gone.pid)
    deployed, summary = project.deploy(tiny["v3"], "--target", "web")
    assert deployed.returncode == 0, deployed.stderr
    assert f"removing the stale deploy lock of oneshot on {h3}" in deployed.stderr
    assert project.live() == [2, 2, 2]
    assert not any((h.state / "oneshot" / "deploy.lock").exists() for h in fleet.hosts)


def test_unreachable_host_is_named_and_nothing_changes(project, fleet, tiny):
    nowhere = f"root@127.0.0.1:{closed_port()}"
    target = f"{fleet.hosts[0].url},ssh://{nowhere},{fleet.hosts[2].url}"
    failed, summary = project.deploy(tiny["v1"], "--target", target)
    assert failed.returncode == 1
    assert summary["steps"][0]["step"] == "preflight" and summary["steps"][0]["status"] == "failed"
    error = failed.stderr.strip().splitlines()[-1]
    assert (
        error.startswith(f"error: cannot deploy: cannot reach {nowhere} (port ")
        and "Connection refused" in error
    )
    assert not any(h.state.exists() for h in fleet.hosts)
    # Status reads every host it can, and names the one it cannot.
    shown = project.inv("status", "--json", "--target", target)
    assert shown.returncode == 1
    hosts = json.loads(shown.stdout)
    assert [h["host"] for h in hosts] == [fleet.hosts[0].endpoint, nowhere, fleet.hosts[2].endpoint]
    assert hosts[1]["error"].startswith(f"cannot reach {nowhere}") and hosts[0]["pid"] == hosts[2]["pid"] == 0


def test_status_logs_rollback_and_stop_for_the_group(project, fleet, tiny):
    project.deploy(tiny["v1"], "--target", "web")
    project.deploy(tiny["v3"], "--target", "web")
    assert project.live() == [2, 2, 2]

    back = project.inv("rollback", "--target", "web", "--json")
    assert back.returncode == 0, back.stderr
    assert "oneshot on web: per host" in back.stderr and "oneshot rolled back on 3 hosts" in back.stderr
    assert [(r["before"], r["after"], r["result"]) for r in json.loads(back.stdout)["hosts"]] == [
        ("generation 2", "generation 1", "rolled back, healthy")
    ] * 3
    assert project.live() == [1, 1, 1]
    shown = project.status()
    assert [h["live"]["store_path"] for h in shown] == [tiny["v1"]] * 3 and all(
        h["health"]["healthy"] for h in shown
    )
    forward = project.inv("rollback", "--target", "web", "--to", "2")
    assert forward.returncode == 0, forward.stderr
    assert project.live() == [2, 2, 2]
    missing = project.inv("rollback", "--target", "web", "--to", "9")
    assert missing.returncode == 1 and "has no generation 9" in missing.stderr and project.live() == [2, 2, 2]

    logs = project.inv("logs", "--target", "web", "--lines", "40")
    assert logs.returncode == 0, logs.stderr
    sections = logs.stdout.split("==> ")[1:]
    assert [s.split(" <==")[0] for s in sections] == [h.endpoint for h in fleet.hosts]
    assert all("v3 listening on" in s and "token ***" in s for s in sections) and SECRET not in logs.stdout

    pids = [h["pid"] for h in shown]
    stopped = project.inv("stop", "--target", "web")
    assert stopped.returncode == 0, stopped.stderr
    assert [h["pid"] for h in project.status()] == [0, 0, 0]
    assert all(
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        for pid in pids
    )


def test_a_group_rollback_failing_on_host_2_puts_every_host_back_where_it_started(project, fleet, tiny):
    """All or nothing, like a deploy: host 1 goes back to v1, host 2's v1 is unhealthy, so hosts 2 and 1
    return to v3 (verified again) and host 3 is never touched; the per-host table says so, in --json too."""
    h1, h2, h3 = (h.endpoint for h in fleet.hosts)
    project.deploy(tiny["v1"], "--target", "web")
    project.deploy(tiny["v3"], "--target", "web")
    assert project.live() == [2, 2, 2]
    (fleet.hosts[1].home / SICK).write_text("v1\n")  # host 2 answers 500 on v1 only

    back = project.inv("rollback", "--target", "web", "--json")
    assert back.returncode == 1
    report = json.loads(back.stdout)
    assert report["ok"] is False and f"{h2} is not healthy" in report["detail"]
    assert [(r["host"], r["before"], r["after"]) for r in report["hosts"]] == [
        (h1, "generation 2", "generation 2"),
        (h2, "generation 2", "generation 2"),
        (h3, "generation 2", "generation 2"),
    ]
    results = [r["result"] for r in report["hosts"]]
    assert results[0] == "back where it started" and results[2] == "not reached: untouched"
    assert results[1].startswith("FAILED: ") and results[1].endswith("; back where it started")
    error = back.stderr.strip().splitlines()[-1]
    assert f"back where they started: {h2} (generation 2), {h1} (generation 2)" in error
    assert f"not reached, left as they were: {h3}" in error and "oneshot on web: per host" in back.stderr
    # No mixed fleet: every host runs v3 again, healthy.
    shown = project.status()
    assert project.live() == [2, 2, 2] and all(h["health"]["healthy"] for h in shown)
    assert [h["live"]["store_path"] for h in shown] == [tiny["v3"]] * 3


def test_built_on_host_1_and_run_by_all_three_on_other_ssh_ports(project, fleet):
    """``--on`` host 1: built there, run by hosts 2 and 3, whose SSH ports differ from host 1's. Their
    (shared) store already holds the build, so nothing is copied (the two-hop copy a real pair of hosts
    needs, each hop with its own ``-p``, is tests/unit/test_closure.py's)."""
    tiny_flake(project.root, uuid.uuid4().hex[:12])  # a nonce: the build really runs
    (project.root / ".gitignore").write_text(".env.fly\n")
    git = {**project.env, **GIT_ENV}
    subprocess.run(["git", "init", "-q", str(project.root)], check=True, env=git)
    subprocess.run(["git", "-C", str(project.root), "add", "-A"], check=True, env=git)
    assert len({h.port for h in fleet.hosts}) == 3
    builder = fleet.hosts[0].endpoint

    done = project.inv("deploy", "--json", "--skip-smoke", "--on", builder, "--target", "web")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    build = next(s for s in summary["steps"] if s["step"] == "build")
    assert build["status"] == "done" and build["detail"].startswith(f"built on {builder}: /nix/store/")
    built = build["detail"].split()[3]
    assert steps(summary)[:3] == [("host locks", "done"), ("diff", "done"), ("copy", "skipped")]
    assert step(summary, "copy")["detail"] == "2 of 3 hosts already had it"  # the build host: nothing to copy
    shown = project.status()
    assert [h["live"]["store_path"] for h in shown] == [built] * 3
    assert all(h["health"]["healthy"] for h in shown)


def test_a_dry_run_plans_every_host_and_connects_only_to_read_the_diff(project, tiny):
    nowhere = [f"ssh://root@127.0.0.1:{closed_port()}" for _ in range(3)]
    done, summary = project.deploy(tiny["v1"], "--target", ",".join(nowhere), "--batch", "2", "--dry-run")
    assert done.returncode == 0, done.stderr
    hosts = [url.removeprefix("ssh://") for url in nowhere]
    assert steps(summary) == [
        ("host locks", "planned"),
        ("diff", "planned"),
        ("copy", "planned"),
        (f"activate {hosts[0]}, {hosts[1]}", "planned"),
        (f"verify {hosts[0]}, {hosts[1]}", "planned"),
        (f"activate {hosts[2]}", "planned"),
        (f"verify {hosts[2]}", "planned"),
        ("receipts", "planned"),
    ]
    # The plan's diff is the one read a dry-run makes on a host: a host it cannot read is named there, and
    # the rest of the plan goes on.
    unread = step(summary, "diff")["table"]["data"]["unread"]
    assert [u["host"] for u in unread] == hosts
    assert all(u["error"].startswith(f"cannot reach {h} (port ") for u, h in zip(unread, hosts, strict=True))
    back = project.inv("rollback", "--dry-run", "--target", ",".join(nowhere))
    assert back.returncode == 0, back.stderr
    plan = ", ".join(f"{h} to its previous healthy generation" for h in hosts)
    assert f"[dry-run] would roll back oneshot, one host after another: {plan}" in back.stderr
    assert "cannot reach" not in back.stderr


def test_bad_targets_are_refused_before_anything_runs(project, fleet):
    h1 = fleet.hosts[0].url
    for args, said in [
        (
            ["--target", "nope"],
            "error: unknown target 'nope' — use fly, local, ssh://user@host[:port], ssh://a,ssh://b or a "
            "group from nixfly.groups in invoke.yaml (web)",
        ),
        (
            ["--target", f"{h1},{h1}"],
            f"error: --target '{h1},{h1}': {h1} is listed twice — list each host once",
        ),
        (
            ["--target", f"{h1},local"],
            f"error: --target '{h1},local': 'local' is not an ssh:// URL — list hosts "
            "as ssh://user@host[:port]",
        ),
        (["--target", "web", "--batch", "0"], "error: --batch 0 is out of range — use at least 1"),
        (
            ["--target", "fly", "--batch", "2"],
            "error: --batch applies to a group of hosts, not to --target fly — drop --batch, or deploy to "
            "ssh://a,ssh://b or a group from nixfly.groups",
        ),
    ]:
        done = project.inv("deploy", "--skip-build", "--skip-smoke", *args)
        assert (done.returncode, done.stderr.strip().splitlines()) == (1, [said]), args
    (project.root / "invoke.yaml").write_text(f"nixfly:\n  groups:\n    web: [{h1}, {h1}]\n")
    done = project.inv("status", "--target", "web")
    assert done.returncode == 1
    assert (
        done.stderr.strip() == f"error: config nixfly.groups.web: {h1} is listed twice — list each host once"
    )
    assert not any(h.state.exists() for h in fleet.hosts)


def test_the_plan_diffs_each_host_against_its_own_live_closure_and_releases_list_receipts(
    project, fleet, tiny
):
    h1, h2, h3 = (h.endpoint for h in fleet.hosts)
    assert project.deploy(tiny["v1"], "--target", "web", "--batch", "3")[0].returncode == 0
    assert project.deploy(tiny["v3"], "--target", fleet.hosts[0].url)[0].returncode == 0

    planned, summary = project.deploy(tiny["v3"], "--target", "web", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    diff = step(summary, "diff")
    assert diff["status"] == "planned", diff
    # Hosts on the same live closure share one diff.
    groups = diff["table"]["data"]["groups"]
    assert [[(h["host"], h["generation"]) for h in g["hosts"]] for g in groups] == [
        [(h1, 2)],
        [(h2, 1), (h3, 1)],
    ]
    assert [g["live"] for g in groups] == [tiny["v3"], tiny["v1"]]
    assert [g["diff"]["nothing_changes"] for g in groups] == [True, False]
    assert diff["detail"].startswith(
        f"{h1}: Nothing changes against generation 2; {h2}, {h3}: against generation 1:"
    )

    listed = project.inv("releases", "--json", "--target", "web")
    assert listed.returncode == 0, listed.stderr
    shown = {host["host"]: host["releases"] for host in json.loads(listed.stdout)}
    assert [(r["generation"], r["current"], r["store_path"]) for r in shown[h1]] == [
        (2, True, tiny["v3"]),
        (1, False, tiny["v1"]),
    ]
    receipt = shown[h1][0]["receipt"]
    assert (receipt["release"], receipt["closure"], receipt["target"]) == (2, tiny["v3"], fleet.hosts[0].url)
    assert receipt["smoke"] == {
        "store_path": tiny["v3"],
        "result": "skipped (--skip-smoke)",
        "tests": receipt["smoke"]["tests"],
    }
    assert [[r["receipt"]["release"] for r in shown[h]] for h in (h2, h3)] == [[1], [1]]
    assert f"oneshot on {h2}: releases" in listed.stderr

    # inv diff on the hosts: each host's live generation against ./result (v3), then two generations.
    compared = project.inv("diff", "--json", "--target", "web")
    assert compared.returncode == 0, compared.stderr
    assert [(g["hosts"], g["diff"]["nothing_changes"]) for g in json.loads(compared.stdout)] == [
        ([{"host": h1, "from": "generation 2", "to": "result"}], True),
        ([{"host": h, "from": "generation 1", "to": "result"} for h in (h2, h3)], False),
    ]
    compared = project.inv("diff", "--json", "--target", fleet.hosts[0].url, "--from", "1", "--to", "2")
    assert compared.returncode == 0, compared.stderr
    [shown] = json.loads(compared.stdout)
    assert (shown["from"], shown["to"]) == (tiny["v1"], tiny["v3"])
    missing = project.inv("diff", "--target", "web", "--from", "1", "--to", "2")
    assert missing.returncode == 1
    assert f"error: cannot compare on 2 of 3 hosts: {h2} has no generation 2; {h3} has no generation 2" in (
        missing.stderr
    )
