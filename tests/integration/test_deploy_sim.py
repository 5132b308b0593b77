"""`inv deploy` against the flyctl simulator, as a user runs it (subprocess), build and smoke skipped.

The full pipeline with real Nix and the smoke tests is in test_deploy_nix.py.
"""

from __future__ import annotations

import json

from flyctl_sim import control
from helpers.project import CANARY

FAST = ("--skip-build", "--skip-smoke")
MUTATING = {"apps create", "volumes create", "secrets import", "secrets set", "deploy"}


def test_first_deploy_creates_everything_then_a_redeploy_changes_nothing(project, fake_result):
    first = project.inv("deploy", "--mode", "integrated", *FAST)
    assert first.returncode == 0, first.stderr
    for step in ("preflight", "lock", "bundle", "app", "volume", "secrets", "release", "deploy", "verify"):
        assert step in first.stderr
    assert control.apps(project.sim) == ["oneshot"]
    assert [v["name"] for v in control.volumes(project.sim, "oneshot")] == ["oneshot_data"]
    assert control.secrets(project.sim, "oneshot") == CANARY
    assert control.app_healthy(project.sim, "oneshot") is True
    assert (project.root / ".env.fly").stat().st_mode & 0o777 == 0o600
    made = [c for c in project.commands() if c in MUTATING]
    assert made == ["apps create", "volumes create", "secrets import", "deploy"]

    calls_before = len(project.flyctl_calls())
    second = project.inv("deploy", "--mode", "integrated", *FAST)
    assert second.returncode == 0, second.stderr
    again = [c for c in project.commands()[calls_before:] if c in MUTATING]
    assert again == [], f"a no-change redeploy must not create, stage or deploy: {again}"
    assert "nothing changed" in second.stderr


def test_secrets_are_staged_then_rolled_out_by_the_deploy(project, fake_result):
    assert project.inv("deploy", *FAST).returncode == 0
    imports = [c for c in project.flyctl_calls() if c.get("command") == "secrets import"]
    assert len(imports) == 1 and "--stage" in imports[0]["argv"]
    assert set(control.secret_statuses(project.sim, "oneshot").values()) == {"Deployed"}


def test_changed_secret_is_staged_alone_and_redeployed(project, fake_result):
    assert project.inv("deploy", *FAST).returncode == 0
    (project.root / ".env").write_text(
        f"CLAUDE_ACCESS_TOKEN=rotated-claude-0000\nGH_TOKEN={CANARY['GH_TOKEN']}\n"
    )
    before = len(project.flyctl_calls())
    result = project.inv("deploy", *FAST)
    assert result.returncode == 0, result.stderr
    new = [c for c in project.flyctl_calls()[before:] if c.get("command") in MUTATING]
    assert [c["command"] for c in new] == ["secrets import", "deploy"]
    assert new[0]["stdin_bytes"] < 60  # only the rotated key travelled
    assert control.secrets(project.sim, "oneshot")["CLAUDE_ACCESS_TOKEN"] == "rotated-claude-0000"


def test_ai_server_only_mode_has_no_volume(project, fake_result):
    result = project.inv("deploy", "--mode", "ai-server-only", *FAST)
    assert result.returncode == 0, result.stderr
    assert control.apps(project.sim) == ["oneshot-ai-providers"]
    assert control.volumes(project.sim, "oneshot-ai-providers") == []
    deploy = next(c for c in project.flyctl_calls() if c.get("command") == "deploy")
    assert deploy["argv"][deploy["argv"].index("--config") + 1].endswith("fly-ai-server.toml")
    assert "--nixpacks" in deploy["argv"]


def test_dry_run_changes_nothing_and_prints_the_plan(project, fake_result):
    result = project.inv("deploy", "--dry-run", *FAST)
    assert result.returncode == 0, result.stderr
    assert "would create app oneshot" in result.stderr
    assert "would run:" in result.stderr and "deploy" in result.stderr
    assert [c for c in project.commands() if c in MUTATING] == []
    assert control.apps(project.sim) == []
    assert not (project.root / ".env.fly").exists()
    assert not (project.root / ".nixfly").exists()


def test_json_summary_on_stdout_for_ci(project, fake_result):
    result = project.inv("deploy", *FAST, "--json", env={"CI": "true"})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert [s["step"] for s in summary["steps"]][:2] == ["preflight", "lock"]
    assert {s["status"] for s in summary["steps"]} <= {"done", "skipped"}
    assert "\x1b[" not in result.stderr  # plain logs under CI
