"""The smaller tasks as a user meets them: the map (`inv --list`), doctor, status, logs, releases, the old
scripts, bundle, secrets, apps/volumes ensure, dev and clean."""

from __future__ import annotations

import json
import os
import stat
import subprocess

from flyctl_sim import control
from helpers.project import CANARY

FAST = ("--skip-build", "--skip-smoke")
TASKS = [
    "deploy",
    "build",
    "bundle",
    "secrets",
    "doctor",
    "status",
    "logs",
    "releases",
    "rollback",
    "dev",
    "clean",
    "update",
    "apps.create",
    "volumes.create",
    "lock.status",
    "lock.release",
    "image.build",
    "image.push",
    "image.inspect",
    "cache.use",
    "cache.push",
]


def table_rows(stderr: str, columns: int) -> list[list[str]]:
    """The cells of the rows with that many columns in the tables on ``stderr`` (plain: `| a | b |`)."""
    found = []
    for line in stderr.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == columns:
            found.append(cells)
    return found


def test_inv_list_is_a_map_of_the_project(project):
    result = project.inv("--list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()[1:]
    listed = [line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("   ")]
    for name in TASKS:
        assert name in listed, name
    for name in listed:
        help_text = project.inv("--help", name)
        assert "Docstring:" in help_text.stdout, name
        for line in help_text.stdout.split("Options:")[1].splitlines():
            if line.strip().startswith("-"):
                assert line.strip().split(None, 1)[1:], f"{name}: an undocumented flag: {line}"


def test_inv_alone_says_where_to_start_and_lists_every_task(project):
    result = project.inv()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Usage:" not in out  # not Invoke's usage text
    path = [out.index(step) for step in ("inv doctor", "inv bundle", "inv deploy", "nox -s smoke")]
    assert path == sorted(path)
    for name in TASKS:
        assert f"  {name} " in out, name


def test_deploy_help_shows_the_steps_and_examples(project):
    text = project.inv("--help", "deploy").stdout
    assert "preflight → lock → build" in text and "verify" in text
    assert "Examples:" in text and "inv deploy --target local" in text and "--dry-run" in text


def test_doctor_reports_a_table_and_fails_on_missing_env_fly(project):
    result = project.inv("doctor")
    assert result.returncode == 1
    rows = {name: status for name, status, _ in table_rows(result.stderr, 3)}
    for check in ("nix", "flyctl", "flyctl login", "flake.lock", "fly-integrated.toml"):
        assert rows.get(check) == "ok", (check, rows)
    assert rows.get(".env.fly") == "FAIL", rows
    assert "inv bundle" in result.stderr
    assert project.inv("bundle").returncode == 0
    ok = project.inv("doctor")
    assert ok.returncode == 0, ok.stderr
    (project.root / ".env.fly").chmod(0o644)
    assert "chmod 600" in project.inv("doctor").stderr


def test_bundle_writes_0600_prints_sources_never_values(project):
    result = project.inv("bundle")
    assert result.returncode == 0, result.stderr
    env_fly = project.root / ".env.fly"
    assert stat.S_IMODE(env_fly.stat().st_mode) == 0o600
    sources = dict(table_rows(result.stderr, 2))  # key → where its value came from
    assert sources["CLAUDE_ACCESS_TOKEN"] == ".env" and sources["GH_TOKEN"] == ".env"
    for value in CANARY.values():
        assert value not in result.stderr + result.stdout
        assert value in env_fly.read_text()
    again = project.inv("bundle")
    assert "unchanged" in again.stderr


def test_old_scripts_still_work(project, fake_result):
    script = project.root / "scripts" / "bundle-credentials.sh"
    out = subprocess.run(
        [str(script), ".env.fly"],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    old = project.root / "ai-server" / "scripts" / "bundle-credentials.sh"
    out = subprocess.run(
        [str(old), "../.env.fly"],
        cwd=project.root / "ai-server",
        env=project.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    deploy = project.root / "scripts" / "deploy-fly-nix.sh"
    out = subprocess.run(
        [str(deploy), "oneshot", "integrated", *FAST],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert control.app_healthy(project.sim, "oneshot") is True
    usage = subprocess.run([str(deploy)], cwd=project.root, env=project.env, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_apps_and_volumes_create_are_idempotent(project):
    for _ in range(2):
        assert project.inv("apps.create").returncode == 0
        assert project.inv("volumes.create").returncode == 0
    assert len(control.volumes(project.sim, "oneshot")) == 1
    assert project.commands().count("apps create") == 1
    assert project.commands().count("volumes create") == 1


def test_taken_app_name(project):
    control.add_taken_name(project.sim, "oneshot")
    result = project.inv("apps.create")
    assert result.returncode == 1 and "taken on Fly.io" in result.stderr and "--app" in result.stderr


def test_secrets_task_needs_the_app_then_skips_unchanged(project):
    assert project.inv("bundle").returncode == 0
    missing = project.inv("secrets")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert project.inv("apps.create").returncode == 0
    assert project.inv("secrets").returncode == 0
    assert control.secret_statuses(project.sim, "oneshot") == dict.fromkeys(CANARY, "Staged")
    again = project.inv("secrets")
    assert "unchanged" in again.stderr
    assert project.commands().count("secrets import") == 1
    now = project.inv("secrets", "--no-stage", "--app", "oneshot")
    assert now.returncode == 0


def test_status_releases_and_bounded_logs(project, fake_result):
    assert project.inv("deploy", *FAST).returncode == 0
    status = project.inv("status")
    assert status.returncode == 0 and "started" in status.stderr and "passing" in status.stderr
    machines = json.loads(project.inv("status", "--json").stdout)["Machines"]
    assert machines and {m["state"] for m in machines} <= {"started", "stopped"}
    assert any(m["state"] == "started" for m in machines)
    assert {c["status"] for m in machines if m["state"] == "started" for c in m["checks"]} == {"passing"}
    releases = project.inv("releases", "--json")
    assert releases.returncode == 0
    [release] = json.loads(releases.stdout)
    assert (release["version"], release["status"]) == (1, "complete")
    control.add_log(project.sim, "oneshot", "hello from the machine")
    logs = project.inv("logs", "--timeout", "3")
    assert logs.returncode == 0 and "hello from the machine" in logs.stdout
    control.init(project.sim)  # no logs at all: flyctl --no-tail would poll forever
    control.create_app(project.sim, "oneshot")
    # Bounded: were --timeout ignored, the subprocess's own timeout would fail the test (no timed assertion).
    quiet = project.inv("logs", "--timeout", "2", timeout=20)
    assert quiet.returncode == 0 and "no (more) logs" in quiet.stderr


def test_dev_dry_run_and_clean(project, fake_result):
    dev = project.inv("dev", "--dry-run")
    assert dev.returncode == 0 and "bun run dev" in dev.stderr and "mix run --no-halt" in dev.stderr
    planned = project.inv("clean", "--dry-run")
    assert "would remove result" in planned.stderr and (project.root / "result").is_symlink()
    assert project.inv("clean").returncode == 0
    assert not os.path.lexists(project.root / "result")


def test_update_dry_run_never_passes_the_override_to_flake_update(project):
    result = project.inv("update", "--dry-run")
    assert result.returncode == 0
    line = next(line for line in result.stderr.splitlines() if "would run" in line)
    assert "flake update" in line and "--override-input" not in line
