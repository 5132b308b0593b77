"""The GitHub Actions workflows keep the properties that matter: what runs, when, with which credentials."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from nixfly.bundle import KEYS

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
# Anything spliced into a script's text becomes shell code (script injection): values go through env.
EXPRESSION = re.compile(r"\$\{\{")
# A major tag of a version that runs on Node 24: GitHub removed Node 20 from its runners in September 2026.
PINNED = re.compile(r"[\w.-]+/[\w.-]+@v\d+")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def step_using(workflow: dict[str, Any], action: str) -> dict[str, Any]:
    found = [s for s in steps(workflow) if s.get("uses", "").split("@")[0] == action]
    assert len(found) == 1, f"expected one {action} step"
    return found[0]


def step_running(workflow: dict[str, Any], text: str) -> dict[str, Any]:
    found = [s for s in steps(workflow) if text in s.get("run", "")]
    assert len(found) == 1, f"expected one step running {text!r}"
    return found[0]


@pytest.fixture(params=["ci.yml", "deploy.yml"])
def workflow(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_no_expression_is_spliced_into_a_script(workflow):
    for step in steps(workflow):
        assert not EXPRESSION.search(step.get("run", "")), step.get("name") or step["run"]


def test_the_token_can_only_read(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        assert "permissions" not in job


def test_actions_are_pinned_to_a_major_version(workflow):
    for step in steps(workflow):
        if "uses" in step:
            assert PINNED.fullmatch(step["uses"]), step["uses"]


def test_checkout_leaves_no_credentials_behind(workflow):
    assert step_using(workflow, "actions/checkout")["with"]["persist-credentials"] is False


def test_flakes_are_on_and_only_main_pushes_to_cachix(workflow):
    nix = step_using(workflow, "cachix/install-nix-action")
    assert "experimental-features = nix-command flakes" in nix["with"]["extra_nix_config"]
    cachix = step_using(workflow, "cachix/cachix-action")
    assert cachix["with"] == {
        "name": "${{ vars.CACHIX_CACHE }}",
        "authToken": "${{ secrets.CACHIX_AUTH_TOKEN }}",
        "skipPush": "${{ github.ref != 'refs/heads/main' }}",
    }


def test_every_job_has_a_timeout(workflow):
    for job in workflow["jobs"].values():
        assert isinstance(job.get("timeout-minutes"), int), "a hung build would hold the runner for 6 hours"


def test_ci_runs_the_nox_sessions_in_the_dev_shell_on_every_push_and_pull_request():
    ci = load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    assert ci["concurrency"] == {"group": "ci-${{ github.ref }}", "cancel-in-progress": True}
    assert step_running(ci, "nox")["run"].strip() == "nix develop --command nox -s tests smoke lint"


def test_deploy_runs_on_main_and_by_hand_with_a_mode():
    deploy = load("deploy.yml")
    assert deploy["on"]["push"] == {"branches": ["main"]}
    mode = deploy["on"]["workflow_dispatch"]["inputs"]["mode"]
    assert mode["type"] == "choice"
    assert mode["options"] == ["integrated", "ai-server-only"]
    assert mode["default"] == "integrated"


def test_deploy_is_never_cancelled_half_way():
    deploy = load("deploy.yml")
    assert deploy["concurrency"] == {"group": "deploy-${{ github.ref }}", "cancel-in-progress": False}


def test_deploy_step_gets_mode_and_credentials_through_env():
    deploy = load("deploy.yml")
    step = step_running(deploy, "inv deploy")
    command = step["run"].strip()
    assert command.startswith("nix develop --command inv deploy ")
    assert '--mode "$MODE"' in command and "--json" in command.split()
    assert command.endswith("> deploy-summary.json")
    env = step["env"]
    # A push has no inputs: the expression falls back to the default mode.
    assert env["MODE"] == "${{ inputs.mode || 'integrated' }}"
    assert env["FLY_API_TOKEN"] == "${{ secrets.FLY_API_TOKEN }}"
    for name in KEYS:  # everything `inv deploy` bundles into .env.fly
        assert env[name] == f"${{{{ secrets.{name} }}}}"


def test_deploy_summary_is_uploaded_even_when_the_deploy_fails():
    deploy = load("deploy.yml")
    upload = step_using(deploy, "actions/upload-artifact")
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "deploy-summary.json"
    names = [s.get("run", "") or s.get("uses", "") for s in steps(deploy)]
    assert names.index(upload["uses"]) > next(i for i, n in enumerate(names) if "inv deploy" in n)
