"""Bad inputs with a story of their own: missing tools, flyctl failing at each step, secrets that must
arrive byte for byte or be refused by name, a token rotated in the environment.

One clear error line, a non-zero exit, no traceback, nothing half-written. The generated bad values of
every flag, setting and file are the adversarial suite's (test_adversarial*.py)."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from flyctl_sim import control

FAST = ("--skip-build", "--skip-smoke")


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_clean_failure(result, *needles):
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def leftovers(root):
    return [p for p in root.rglob("*.tmp") if ".git" not in p.parts]


def test_flyctl_missing(project, fake_result):
    path = os.pathsep.join(p for p in project.env["PATH"].split(os.pathsep) if "flyctl_sim" not in p)
    line = assert_clean_failure(project.inv("deploy", *FAST, env={"PATH": path}), "flyctl not found")
    assert "NIXFLY_FLYCTL" in line


def test_nix_missing(project, fake_result):
    keep = [p for p in project.env["PATH"].split(os.pathsep) if not (shutil.which("nix", path=p))]
    result = project.inv("deploy", "--skip-smoke", env={"PATH": os.pathsep.join(keep)})
    assert_clean_failure(result, "nix not found")


def test_not_logged_in(project, fake_result):
    control.logout(project.sim)
    line = assert_clean_failure(project.inv("deploy", *FAST), "flyctl is not logged in")
    assert "flyctl auth login" in line


def test_google_credential_not_json(project, fake_result):
    (project.root / "google.json").write_text("{'single': 'quotes are not JSON', 'key': 'canary-google-key'}")
    result = project.inv("bundle", env={"GOOGLE_APPLICATION_CREDENTIALS": "google.json"})
    line = assert_clean_failure(result, "not valid JSON")
    assert "canary-google-key" not in result.stderr + result.stdout
    assert "canary" not in line
    assert not (project.root / ".env.fly").exists()


def test_previous_env_fly_survives_a_failed_bundle(project, fake_result):
    assert project.inv("bundle").returncode == 0
    before = (project.root / ".env.fly").read_text()
    (project.root / ".env").write_text("broken line\n")
    assert_clean_failure(project.inv("bundle"), "line 1")
    assert (project.root / ".env.fly").read_text() == before
    assert leftovers(project.root) == []


@pytest.mark.parametrize("flyctl", ["0.4.87", "0.3.172"])  # the newest, and the nixos-25.05 kind
def test_tricky_secret_values_arrive_intact(project, fake_result, flyctl):
    control.set_version(project.sim, flyctl)  # the simulator plays that release's import parser
    tricky = {
        "CLAUDE_ACCESS_TOKEN": "to#ken \"with\" 'quotes' = and € ✓",
        "GH_TOKEN": "  leading and trailing  ",
    }
    google = {"type": "service_account", "private_key": "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"}
    (project.root / "google.json").write_text(json.dumps(google, indent=2))
    (project.root / ".env").write_text(
        "CLAUDE_ACCESS_TOKEN='to#ken \"with\" \\'quotes\\' = and € ✓'\nGH_TOKEN='  leading and trailing  '\n"
    )
    result = project.inv("deploy", *FAST, env={"GOOGLE_APPLICATION_CREDENTIALS": "google.json"})
    assert result.returncode == 0, result.stderr
    remote = control.secrets(project.sim, "oneshot")
    assert remote["CLAUDE_ACCESS_TOKEN"] == tricky["CLAUDE_ACCESS_TOKEN"]
    assert remote["GH_TOKEN"] == tricky["GH_TOKEN"]
    assert json.loads(remote["GOOGLE_APPLICATION_CREDENTIALS_JSON"]) == google


def test_multiline_secret_from_the_environment(project, fake_result):
    value = "line one\nline two # not a comment\n\nlast"
    (project.root / ".env").write_text("")
    result = project.inv("deploy", *FAST, env={"CLAUDE_ACCESS_TOKEN": value})
    assert result.returncode == 0, result.stderr
    assert control.secrets(project.sim, "oneshot")["CLAUDE_ACCESS_TOKEN"] == value


def test_value_flyctl_cannot_carry_is_refused_before_sending(project, fake_result):
    (project.root / ".env").write_text("")
    result = project.inv("deploy", *FAST, env={"CLAUDE_ACCESS_TOKEN": "x" * 70000})
    assert_clean_failure(result, "CLAUDE_ACCESS_TOKEN", "64 KiB")
    assert "secrets import" not in project.commands()


def test_missing_required_secret(project, fake_result):
    (project.root / ".env").write_text("GH_TOKEN=only-this\n")
    line = assert_clean_failure(project.inv("deploy", *FAST), "lacks required secrets: CLAUDE_ACCESS_TOKEN")
    assert "inv bundle" in line
    assert "deploy" not in project.commands()


STEPS = [
    ("apps create", "app"),
    ("volumes create", "volume"),
    ("secrets import", "secrets"),
    ("releases", "release"),
    ("deploy", "deploy"),
]


@pytest.mark.parametrize(("command", "step"), STEPS)
def test_flyctl_failing_at_each_step(project, fake_result, command, step):
    if command == "releases":
        # A new app has no releases to read (nixfly no longer asks): the read matters once one exists.
        assert project.inv("deploy", *FAST).returncode == 0
        (project.root / ".env").write_text("CLAUDE_ACCESS_TOKEN=rotated-for-the-releases-case\n")
    control.inject_fault(project.sim, command, times=-1, message=f"Error: injected failure in {command}")
    line = assert_clean_failure(project.inv("deploy", *FAST), f"injected failure in {command}")
    assert "Error:" in line
    summary = project.inv("lock.status")
    assert "not locked" in summary.stderr
    assert leftovers(project.root) == []


def test_paths_with_shell_metacharacters_are_inert_argv(project, fake_result, tmp_path):
    marker = tmp_path / "pwned"
    weird = f"creds $(touch {marker}) `touch {marker}`; touch {marker}.env"
    (project.root / ".gitignore").write_text((project.root / ".gitignore").read_text() + "creds*\n")
    result = project.inv("bundle", "--env-file", weird)
    assert result.returncode == 0, result.stderr
    assert (project.root / weird).exists() and not marker.exists()
    deploy = project.inv("deploy", *FAST, "--app", "ok-app", env={"GOOGLE_APPLICATION_CREDENTIALS": weird})
    assert "not valid JSON" in deploy.stderr and not marker.exists()  # the file was read, literally


def test_a_token_rotated_in_the_environment_is_deployed_whatever_the_file_dates(project, fake_result):
    """.env.fly made from .env, then newer than every source: the token set in the environment still wins
    (values are compared, not file times)."""
    assert project.inv("deploy", *FAST).returncode == 0
    later = time.time() + 3600
    os.utime(project.root / ".env.fly", (later, later))
    rotated = "canary-claude-rotated-0003"
    result = project.inv("deploy", *FAST, env={"CLAUDE_ACCESS_TOKEN": rotated})
    assert result.returncode == 0, result.stderr
    assert control.secrets(project.sim, "oneshot")["CLAUDE_ACCESS_TOKEN"] == rotated
    assert "CLAUDE_ACCESS_TOKEN changed" in result.stderr
