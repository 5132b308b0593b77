"""The GitHub Actions workflows keep the properties that matter: what runs, when, with which credentials."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from nixfly.bundle import KEYS

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
CI_RUN = REPO / ".ci" / "run"
BUILD_AND_SMOKE = REPO / ".ci" / "build-and-smoke"
INTEGRATION_TESTS = REPO / "tests" / "integration"
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


@pytest.fixture(params=["ci.yml", "deploy.yml", "preview.yml"])
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
    checkouts = [s for s in steps(workflow) if s.get("uses", "").split("@")[0] == "actions/checkout"]
    assert len(checkouts) == len(workflow["jobs"])
    for checkout in checkouts:
        assert checkout["with"]["persist-credentials"] is False


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


def script_lines(path: Path) -> list[list[str]]:
    """The command lines of a shell script, as words (comments and continuation lines skipped)."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and not raw.startswith((" ", "\t")):
            lines.append(line.split())
    return lines


def command(run: str) -> list[str]:
    """A step's command as words: without `sudo`, `nix develop --command` and a redirection of stdout."""
    words = shlex.split(run.strip())
    if ">" in words:
        words = words[: words.index(">")]
    if words[:1] == ["sudo"]:
        words = words[1:]
    if words[:3] == ["nix", "develop", "--command"]:
        words = words[3:]
    return words


def exercised_by_ci_run(words: list[str]) -> bool:
    """Whether .ci/run runs this too: itself, a .ci/ script it calls, or an `inv` call the integration tests
    (its `nox -s … tests`) make with the same task and flags."""
    ci_run = script_lines(CI_RUN)
    program = words[0]
    if program == ".ci/run":
        return True
    if program.startswith(".ci/"):
        return any(line[:1] == [program] or line[:2] == ["bash", program] for line in ci_run)
    if program == "inv":
        runs_integration_tests = any(line[:2] == ["nox", "-s"] and "tests" in line for line in ci_run)
        task, flags = words[1], [w for w in words[2:] if w.startswith("--")]
        calls = [
            line
            for path in INTEGRATION_TESTS.glob("test_*.py")
            for line in path.read_text().splitlines()
            if f'"{task}"' in line
        ]
        return runs_integration_tests and all(any(f'"{flag}"' in call for call in calls) for flag in flags)
    return False


def test_every_run_step_is_something_ci_run_exercises(workflow):
    """Nothing in YAML that is tested nowhere: a green .ci/run on a fresh machine means a green job."""
    for name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "run" in step:
                assert exercised_by_ci_run(command(step["run"])), f"{name}: {step['run']!r}"


def test_ci_runs_on_every_push_and_pull_request_and_a_newer_push_cancels():
    ci = load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    assert ci["concurrency"] == {"group": "ci-${{ github.ref }}", "cancel-in-progress": True}
    assert set(ci["jobs"]) == {"test", "real-nixpkgs"}


def test_the_test_job_is_ci_run_as_root_and_installs_nothing_itself():
    job = load("ci.yml")["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-24.04"  # what .ci/run's package names are checked against
    assert [s["run"].strip() for s in job["steps"] if "run" in s] == ["sudo .ci/run"]
    assert [s["uses"].split("@")[0] for s in job["steps"] if "uses" in s] == ["actions/checkout"]


def test_the_real_nixpkgs_job_builds_what_deploys_and_smokes_it():
    job = load("ci.yml")["jobs"]["real-nixpkgs"]
    steps_ = job["steps"]
    uses = [s["uses"].split("@")[0] for s in steps_ if "uses" in s]
    assert uses == ["actions/checkout", "cachix/install-nix-action", "cachix/cachix-action"]
    runs = [s for s in steps_ if "run" in s]
    assert [s["run"].strip() for s in runs] == [".ci/build-and-smoke"]
    assert steps_.index(runs[0]) == len(steps_) - 1  # after Nix and the cache are set up
    # Real nixpkgs: nothing swaps in the offline stand-in.
    assert "NIXFLY_NIX_OPTIONS" not in str(job)
    script = BUILD_AND_SMOKE.read_text()
    assert ".#oneshot-integrated .#oci-image-integrated" in script and "--print-build-logs" in script
    assert "--command nox -s smoke" in script


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


def test_preview_deploys_on_pull_requests_destroys_on_close_and_prunes_daily():
    preview = load("preview.yml")
    assert preview["on"]["pull_request"] == {"types": ["opened", "synchronize", "reopened", "closed"]}
    [daily] = preview["on"]["schedule"]
    assert len(daily["cron"].split()) == 5 and daily["cron"].split()[2:] == ["*", "*", "*"]
    # One run per pull request, queued: a close never races a deploy of the same app.
    assert preview["concurrency"] == {
        "group": "preview-${{ github.event.pull_request.number || 'prune' }}",
        "cancel-in-progress": False,
    }
    deploy = step_running(preview, "inv preview --pr")
    assert "action != 'closed'" in deploy["if"]
    destroy = step_running(preview, "inv preview.destroy --pr")
    assert "action == 'closed'" in destroy["if"]
    prune = step_running(preview, "inv preview.prune --older-than")
    assert prune["if"] == "${{ github.event_name == 'schedule' }}"
    for step in (deploy, destroy):
        assert step["env"]["PR"] == "${{ github.event.pull_request.number }}"
    for step in (deploy, destroy, prune):
        assert step["env"]["FLY_API_TOKEN"] == "${{ secrets.FLY_API_TOKEN }}"
        # No production credential is handed to a preview's job.
        assert not set(step["env"]) & set(KEYS)


def test_preview_never_runs_for_forks():
    [job] = load("preview.yml")["jobs"].values()
    assert job["if"] == (
        "${{ github.event_name == 'schedule' || "
        "github.event.pull_request.head.repo.full_name == github.repository }}"
    )


def test_preview_comments_only_with_the_token_it_is_given():
    preview = load("preview.yml")
    [job] = preview["jobs"].values()
    assert job["env"] == {"COMMENTS": "${{ secrets.PREVIEW_COMMENT_TOKEN != '' }}"}
    comment = step_using(preview, "actions/github-script")
    assert "env.COMMENTS == 'true'" in comment["if"] and "steps.preview.outcome == 'success'" in comment["if"]
    assert comment["with"]["github-token"] == "${{ secrets.PREVIEW_COMMENT_TOKEN }}"
    assert comment["env"] == {"URL": "${{ steps.preview.outputs.url }}"}
    assert not EXPRESSION.search(comment["with"]["script"])
    assert step_running(preview, "inv preview --pr")["id"] == "preview"
