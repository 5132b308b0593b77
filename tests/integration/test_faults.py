"""Faults outside nixfly: a hung external command at each call a deploy makes.

Every call is bounded (nixfly.timeouts, per kind of command; verify as a whole by health.timeout): a hang
ends as one error line naming the command and the key to raise, with no process of the run left (found by
a mark in the environment every child inherits) and the lock released. The limits here are a few seconds,
so each case costs little.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex

import pytest
from flyctl_sim import control
from helpers import procs
from helpers.project import Project, built_result

FAST = ("--skip-build", "--skip-smoke")
HANG = 600  # seconds a hung command would take: far beyond every limit here
LIMITS = "  timeouts:\n    flyctl: 3\n    flyctl_deploy: 4\n    git: 3\n    nix_build: 4\n"
# flyctl's own limit left at its default (120 s): verify must end by health.timeout (6 s + one probe's 2 s).
VERIFY_LIMITS = "  timeouts:\n    flyctl_deploy: 4\n"


def hang_sim(command: str) -> Callable[[Project, Path], dict[str, str]]:
    def arrange(project: Project, tmp_path: Path) -> dict[str, str]:
        control.set_delay(project.sim, command, HANG)
        return {}

    return arrange


def hang_tool(name: str, pattern: str) -> Callable[[Project, Path], dict[str, str]]:
    """A stand-in ``name`` first on PATH that hangs when its arguments match ``pattern``."""

    def arrange(project: Project, tmp_path: Path) -> dict[str, str]:
        fake = tmp_path / "fakebin"
        fake.mkdir(exist_ok=True)
        real = shutil.which(name, path=project.env["PATH"])
        (fake / name).write_text(
            f'#!/bin/sh\ncase " $* " in {pattern}) sleep {HANG}; exit 1 ;; esac\nexec "{real}" "$@"\n'
        )
        (fake / name).chmod(0o755)
        return {"PATH": f"{fake}:{project.env['PATH']}"}

    return arrange


@dataclass(frozen=True)
class Hang:
    name: str
    arrange: Callable[[Project, Path], dict[str, str]]
    said: str  # in the error line
    args: tuple[str, ...] = FAST
    v1_first: bool = False
    limits: str = LIMITS


HANGS = [
    Hang("auth-whoami", hang_sim("auth whoami"), "(nixfly.timeouts.flyctl)"),
    Hang("apps-create", hang_sim("apps create"), "(nixfly.timeouts.flyctl)"),
    Hang("secrets-import", hang_sim("secrets import"), "(nixfly.timeouts.flyctl)"),
    Hang("releases", hang_sim("releases"), "(nixfly.timeouts.flyctl)", v1_first=True),
    Hang("deploy", hang_sim("deploy"), "(nixfly.timeouts.flyctl_deploy)", v1_first=True),
    Hang(
        "checks-list",
        hang_sim("checks list"),
        "the 8s of nixfly.health.timeout ran out",
        ("--force", *FAST),
        v1_first=True,
        limits=VERIFY_LIMITS,
    ),
    Hang("git", hang_tool("git", "*' rev-parse '*"), "(nixfly.timeouts.git)"),
    Hang("nix-build", hang_tool("nix", "*' build '*"), "(nixfly.timeouts.nix_build)", ("--skip-smoke",)),
]


@pytest.mark.parametrize("hang", HANGS, ids=[h.name for h in HANGS])
def test_a_hung_command_ends_the_deploy_with_one_line(project, fake_result, tmp_path, hang):
    with (project.root / "invoke.yaml").open("a") as yaml:
        yaml.write(hang.limits)
    if hang.v1_first:
        first = project.inv("deploy", *FAST)
        assert first.returncode == 0, first.stderr
        (project.root / ".env").write_text("CLAUDE_ACCESS_TOKEN=rotated-before-the-hang\n")
    mark = f"NIXFLY_TEST_RUN={token_hex(6)}"
    env = {**hang.arrange(project, tmp_path), mark.split("=")[0]: mark.split("=")[1]}
    try:
        result = project.inv("deploy", *hang.args, env=env, timeout=300)
        assert result.returncode == 1, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and hang.said in errors[0], result.stderr
        assert "Traceback" not in result.stderr
        assert procs.marked(mark) == [], [p.cmdline for p in procs.marked(mark)]
        assert not (project.root / ".nixfly" / "deploy-oneshot.lock").exists()
    finally:
        for p in procs.marked(mark):
            with suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)


# --- a local write that fails after a healthy release ----------------------------------------------------
def test_a_record_that_cannot_be_written_never_rolls_back_a_healthy_release(project, fake_result):
    """A full disk, made certain: the record of what was deployed is a directory, so writing it fails after
    v2 was deployed and verified. v2 stays live; the run fails (exit 1) naming what was not recorded."""
    first = project.inv("deploy", *FAST)
    assert first.returncode == 0, first.stderr
    (project.root / ".env").write_text("CLAUDE_ACCESS_TOKEN=rotated-before-the-full-disk\n")
    record = project.root / ".nixfly" / "deployed-oneshot.json"
    record.unlink()
    record.mkdir()
    result = project.inv("deploy", *FAST, "--json")
    assert result.returncode == 1, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "cannot write .nixfly/deployed-oneshot.json" in line, line
    assert "nothing was rolled back: only nixfly's own record (deployed-oneshot.json) was not written" in line
    assert not any(c.get("command") == "deploy" and "immediate" in c["argv"] for c in project.flyctl_calls())
    assert control.current_release(project.sim, "oneshot")["version"] == 2  # type: ignore[index]
    assert not (project.root / ".nixfly" / "deploy-oneshot.lock").exists()


# --- the registry login during a push that is stopped ----------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_a_push_stopped_by_term_or_kill_leaves_no_registry_login(project, tmp_path, signum):
    """The login skopeo reads is an in-memory file of nixfly's (/proc/<pid>/fd/<n>): nothing of it is on a
    disk while the push runs, and it is gone once nixfly is, even after `kill -9`."""
    built_result(project)  # the image step pushes only an image holding ./result's closure
    env = hang_tool("skopeo", "*' --authfile '*")(project, tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    mark = f"NIXFLY_TEST_RUN={token_hex(6)}"
    env = {**env, "TMPDIR": str(tmp), mark.split("=")[0]: mark.split("=")[1]}
    err = tmp_path / "err"
    with err.open("wb") as stderr:
        inv = subprocess.Popen(
            [sys.executable, "-m", "invoke", "deploy", *FAST, "--builder", "image"],
            cwd=project.root,
            env={**project.env, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:

        def pushing() -> list[procs.Proc]:
            assert inv.poll() is None, err.read_text()
            return [p for p in procs.marked(mark) if "--authfile" in p.cmdline]

        [skopeo] = procs.wait_until(pushing, 240, "skopeo with a login")
        authfile = skopeo.cmdline.split("--authfile")[1].split()[0]
        assert authfile.startswith(f"/proc/{inv.pid}/fd/"), skopeo.cmdline
        assert json.loads(Path(authfile).read_text())["auths"]
        assert [p.name for p in tmp.iterdir() if p.name.startswith("nixfly-auth-")] == []
        inv.send_signal(signum)
        inv.wait(60)
        assert not Path(authfile).exists()
        if signum == signal.SIGTERM:
            assert inv.returncode == 143, err.read_text()
            assert procs.marked(mark) == []
    finally:
        if inv.poll() is None:
            inv.kill()
            inv.wait()
        for p in procs.marked(mark):
            with suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)


# --- concurrency ------------------------------------------------------------------------------------------
def test_inv_secrets_refuses_while_a_deploy_holds_the_lock(project, fake_result):
    """Secrets staged in the middle of a deploy would ship with its release unseen: refused, as a rollback
    is, naming the holder; nothing is sent."""
    first = project.inv("deploy", *FAST)
    assert first.returncode == 0, first.stderr
    holder = subprocess.Popen(["sleep", "120"])  # a live deploy of this host
    try:
        (project.root / ".nixfly" / "deploy-oneshot.lock").write_text(
            json.dumps(
                {
                    "who": "ci",
                    "host": os.uname().nodename,
                    "pid": holder.pid,
                    "since": "t",
                    "command": "deploy",
                }
            )
        )
        imports = sum(1 for c in project.flyctl_calls() if c.get("command") == "secrets import")
        (project.root / ".env.fly").write_text("CLAUDE_ACCESS_TOKEN=changed-during-the-deploy\n")
        result = project.inv("secrets")
        assert result.returncode == 1, result.stderr
        assert (
            f"another deploy of oneshot is running: lock held by ci@{os.uname().nodename} (pid {holder.pid}"
            in result.stderr
        )
        assert sum(1 for c in project.flyctl_calls() if c.get("command") == "secrets import") == imports
    finally:
        holder.kill()
        holder.wait()


# --- output to a closed stdout, and --json on every path -------------------------------------------------
@pytest.mark.parametrize("json_flag", [("--json",), ()], ids=["json", "table"])
def test_a_deploy_with_stdout_closed_succeeds_and_says_its_output_is_lost(project, fake_result, json_flag):
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "deploy", *FAST, *json_flag],
        cwd=project.root,
        env=project.env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.close(1),  # `inv deploy >&-`
    )
    assert result.returncode == 0, result.stderr
    assert "warning: stdout is closed" in result.stderr
    assert (
        "bug" not in result.stderr and "Traceback" not in result.stderr and "Exception" not in result.stderr
    )
    assert control.current_release(project.sim, "oneshot")["version"] == 1  # type: ignore[index]


@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "--json", "--port", "abc"),
        ("deploy", "--json", "--mode", "nope"),
        ("status", "--json", "--app", "Bad_App"),
    ],
    ids=["bad-port", "bad-mode", "bad-app"],
)
def test_json_prints_one_document_on_input_errors_too(project, args):
    result = project.inv(*args)
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)  # exactly one document: json.loads refuses anything after it
    assert document["ok"] is False and document["exit_code"] == 1
    assert f"error: {document['error']}" in result.stderr
