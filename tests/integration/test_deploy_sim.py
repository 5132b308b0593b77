"""`inv deploy` against the flyctl simulator, as a user runs it (subprocess), build and smoke skipped.

The full pipeline with real Nix and the smoke tests is in test_deploy_nix.py.
"""

from __future__ import annotations

import json

from flyctl_sim import control
from helpers.project import CANARY, steps

FAST = ("--skip-build", "--skip-smoke")
MUTATING = {"apps create", "volumes create", "secrets import", "secrets set", "deploy"}


def test_first_deploy_creates_everything_then_a_redeploy_changes_nothing(project, fake_result):
    first = project.inv("deploy", "--mode", "integrated", *FAST, "--json")
    assert first.returncode == 0, first.stderr
    done = steps(first)
    assert {name: status for name, (status, _) in done.items()} == {
        "preflight": "done",
        "lock": "done",
        "build": "skipped",
        "smoke": "skipped",
        "bundle": "done",
        "diff": "skipped",
        "app": "done",
        "volume": "done",
        "secrets": "done",
        "image": "skipped",
        "release": "done",
        "deploy": "done",
        "verify": "done",
        "receipt": "skipped",
    }
    assert done["diff"][1] == "oneshot does not exist yet: everything is new"
    assert done["app"][1] == "created app oneshot"
    assert done["release"][1] == "first deploy: nothing to roll back to"
    assert control.apps(project.sim) == ["oneshot"]
    assert [v["name"] for v in control.volumes(project.sim, "oneshot")] == ["oneshot_data"]
    assert control.secrets(project.sim, "oneshot") == CANARY
    assert control.app_healthy(project.sim, "oneshot") is True
    assert (project.root / ".env.fly").stat().st_mode & 0o777 == 0o600
    made = [c for c in project.commands() if c in MUTATING]
    assert made == ["apps create", "volumes create", "secrets import", "deploy"]

    calls_before = len(project.flyctl_calls())
    second = project.inv("deploy", "--mode", "integrated", *FAST, "--json")
    assert second.returncode == 0, second.stderr
    again = [c for c in project.commands()[calls_before:] if c in MUTATING]
    assert again == [], f"a no-change redeploy must not create, stage or deploy: {again}"
    redeploy = steps(second)
    assert [redeploy[name][0] for name in ("app", "volume", "secrets", "deploy")] == ["skipped"] * 4
    assert redeploy["deploy"][1] == "v1 is live and nothing changed (--force redeploys)"
    assert redeploy["verify"][0] == "done" and redeploy["verify"][1].startswith("v1 still healthy: ")


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
    result = project.inv("deploy", *FAST, "--json")
    assert result.returncode == 0, result.stderr
    assert steps(result)["secrets"] == ("done", "staged CLAUDE_ACCESS_TOKEN")
    assert steps(result)["deploy"][1].endswith("(the closure, config or secrets changed)")
    new = [c for c in project.flyctl_calls()[before:] if c.get("command") in MUTATING]
    assert [c["command"] for c in new] == ["secrets import", "deploy"]
    assert new[0]["stdin_bytes"] < 60  # only the rotated key travelled
    assert control.secrets(project.sim, "oneshot")["CLAUDE_ACCESS_TOKEN"] == "rotated-claude-0000"


def test_ai_server_only_mode_has_no_volume(project, fake_result):
    result = project.inv("deploy", "--mode", "ai-server-only", *FAST, "--json")
    assert result.returncode == 0, result.stderr
    assert steps(result)["volume"] == ("skipped", "mode ai-server-only has no volume")
    assert control.apps(project.sim) == ["oneshot-ai-providers"]
    assert control.volumes(project.sim, "oneshot-ai-providers") == []
    deploy = next(c for c in project.flyctl_calls() if c.get("command") == "deploy")
    assert deploy["argv"][deploy["argv"].index("--config") + 1].endswith("fly-ai-server.toml")
    assert "--nixpacks" in deploy["argv"]


def test_dry_run_changes_nothing_and_prints_the_plan(project, fake_result):
    result = project.inv("deploy", "--dry-run", *FAST, "--json")
    assert result.returncode == 0, result.stderr
    plan = steps(result)
    assert plan["app"] == ("planned", "would create app oneshot")
    assert plan["lock"] == ("planned", "would lock oneshot")
    assert {name: status for name, (status, _) in plan.items() if status != "planned"} == {
        "preflight": "done",
        "build": "skipped",
        "smoke": "skipped",
        "diff": "skipped",  # a new app: nothing live to compare with
        "image": "skipped",
    }
    assert plan["receipt"] == (
        "planned",
        "would push the receipt and SBOM beside the image in 127.0.0.1:9/oneshot",
    )
    # What it would run is printed, the deploy itself included.
    assert "[dry-run] would run: flyctl deploy --app oneshot" in result.stderr
    assert [c for c in project.commands() if c in MUTATING] == []
    assert control.apps(project.sim) == []
    assert not (project.root / ".env.fly").exists()
    assert not (project.root / ".nixfly").exists()


def test_json_summary_on_stdout_for_ci(project, fake_result):
    result = project.inv("deploy", *FAST, "--json", env={"CI": "true"})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert [s["step"] for s in summary["steps"]] == [
        *("preflight", "lock", "build", "smoke", "bundle", "diff"),
        *("app", "volume", "secrets", "image", "release", "deploy", "verify", "receipt"),
    ]
    assert {s["status"] for s in summary["steps"]} <= {"done", "skipped"}
    assert "\x1b[" not in result.stderr  # plain logs under CI
