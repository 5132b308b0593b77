"""`inv preview` and its cleanup against the flyctl simulator, as CI runs them (subprocess, --json).

Build and smoke are skipped here (test_deploy_nix.py runs them for real); the Fly side is the point: one
marked app per PR, created once, updated in place, destroyed with its volume; prune and destroy never touch
an app without nixfly's marker; no production secret reaches a preview unless listed.
"""

from __future__ import annotations

import json
import time

from flyctl_sim import control
from helpers.project import CANARY, steps

FAST = ("--skip-build", "--skip-smoke")
MUTATING = {"apps create", "apps destroy", "volumes create", "secrets import", "deploy"}
DAY = 86400


def mark(project, app: str, *, pr: int, days_old: float) -> None:
    """An app as an earlier `inv preview` would have left it (the marker is a secret's name)."""
    control.create_app(project.sim, app)
    created = int(time.time() - days_old * DAY)
    control.set_secret(project.sim, app, f"NIXFLY_PREVIEW_PR_{pr}_AT_{created}", "x")


def released_now(project, app: str) -> None:
    """A release of ``app`` made just now, as `fly deploy` records it (a push to the PR deployed again)."""
    with control.edit(project.sim) as st:
        st["apps"][app]["releases"].append(
            {
                "id": "rel_pushed",
                "version": 1,
                "status": "complete",
                "reason": "deploy",
                "description": "",
                "strategy": "rolling",
                "image_ref": "registry.fly.io/x:1",
                "user_email": "",
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "evaluation_id": "ev_1",
                "healthy": True,
                "metadata": None,
            }
        )


def test_open_update_close(project, fake_result):
    outputs = project.root.parent / "github-output"
    opened = project.inv("preview", "--pr", "12", *FAST, "--json", env={"GITHUB_OUTPUT": str(outputs)})
    assert opened.returncode == 0, opened.stderr
    # What the workflow's comment step reads (steps.preview.outputs.url).
    assert outputs.read_text() == "url=https://oneshot-pr-12.fly.dev\napp=oneshot-pr-12\n"
    done = steps(opened)
    assert done["app"] == ("done", "created app oneshot-pr-12")
    assert done["marker"][0] == "done"
    assert done["marker"][1].startswith("marked oneshot-pr-12 as preview of PR 12")
    assert done["url"] == ("done", "https://oneshot-pr-12.fly.dev")
    assert done["verify"][0] == "done"
    assert sorted(control.apps(project.sim)) == ["oneshot-pr-12"]
    machines = control.machines(project.sim, "oneshot-pr-12")
    assert len(machines) == 1
    config = machines[0]["config"]
    assert config["env"]["AI_PROVIDER"] == "echo"
    service = config["services"][0]
    assert service["autostop"] in ("stop", True) and service["min_machines_running"] == 0  # production: 1
    volumes = control.volumes(project.sim, "oneshot-pr-12")
    assert [(v["name"], v["size_gb"]) for v in volumes] == [("oneshot_data", 1)]

    before = len(project.flyctl_calls())
    updated = project.inv("preview", "--pr", "12", *FAST, "--force")
    assert updated.returncode == 0, updated.stderr
    assert updated.stdout == "https://oneshot-pr-12.fly.dev\n"  # without --json, stdout is the URL
    again = steps(project.inv("preview", "--pr", "12", *FAST, "--json"))
    assert [again[s][0] for s in ("app", "marker", "volume")] == ["skipped"] * 3
    assert again["deploy"][0] == "skipped"  # nothing changed since the forced update
    made = [c for c in project.commands()[before:] if c in MUTATING]
    assert made == ["deploy"], made
    assert len(control.machines(project.sim, "oneshot-pr-12")) == 1

    listed = project.inv("preview.list", "--json")
    assert listed.returncode == 0, listed.stderr
    [shown] = json.loads(listed.stdout)["previews"]
    assert shown["app"] == "oneshot-pr-12" and shown["pr"] == 12 and shown["age_seconds"] < DAY

    closed = project.inv("preview.destroy", "--pr", "12", "--json")
    assert closed.returncode == 0, closed.stderr
    [gone] = json.loads(closed.stdout)["destroyed"]
    assert gone["app"] == "oneshot-pr-12" and gone["volumes"][0].startswith("oneshot_data (vol_")
    assert control.apps(project.sim) == []
    twice = project.inv("preview.destroy", "--pr", "12", "--json")
    assert twice.returncode == 0, twice.stderr
    assert json.loads(twice.stdout)["destroyed"] == []


def test_prune_removes_exactly_the_stale_marked_apps(project):
    mark(project, "oneshot-pr-3", pr=3, days_old=9)
    mark(project, "oneshot-pr-5", pr=5, days_old=2)
    mark(project, "oneshot-pr-6", pr=6, days_old=9)
    released_now(project, "oneshot-pr-6")  # old, but deployed today: still in use
    control.create_app(project.sim, "oneshot-pr-4")  # the name matches, the marker is missing
    control.create_app(project.sim, "oneshot")  # production
    dry = project.inv("preview.prune", "--older-than", "7d", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert [g["app"] for g in json.loads(dry.stdout)["destroyed"]] == ["oneshot-pr-3"]
    assert "apps destroy" not in project.commands()
    pruned = project.inv("preview.prune", "--older-than", "7d", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert [g["app"] for g in json.loads(pruned.stdout)["destroyed"]] == ["oneshot-pr-3"]
    assert sorted(control.apps(project.sim)) == ["oneshot", "oneshot-pr-4", "oneshot-pr-5", "oneshot-pr-6"]
    unmarked = project.inv("preview.destroy", "--pr", "4")
    assert unmarked.returncode == 1
    assert "oneshot-pr-4 carries no nixfly preview marker" in unmarked.stderr
    assert "oneshot-pr-4" in control.apps(project.sim)


def test_a_production_secret_reaches_a_preview_only_when_listed(project, fake_result):
    unlisted = project.inv("preview", "--mode", "ai-server-only", "--pr", "7", *FAST)
    assert unlisted.returncode == 0, unlisted.stderr
    app = "oneshot-ai-providers-pr-7"
    # A mode with services and no mount: one machine all the same (--ha=false), and no volume.
    assert len(control.machines(project.sim, app)) == 1 and control.volumes(project.sim, app) == []
    sent = control.secrets(project.sim, app)
    assert not set(CANARY) & set(sent)
    seen = json.dumps(control.read_state(project.sim)) + unlisted.stdout + unlisted.stderr
    assert not any(value in seen for value in CANARY.values())

    (project.root / "invoke.yaml").write_text(
        (project.root / "invoke.yaml").read_text() + "  preview:\n    secrets: [GH_TOKEN]\n"
    )
    listed = project.inv("preview", "--mode", "ai-server-only", "--pr", "7", *FAST, "--json")
    assert listed.returncode == 0, listed.stderr
    sent = control.secrets(project.sim, app)
    assert sent["GH_TOKEN"] == CANARY["GH_TOKEN"] and "CLAUDE_ACCESS_TOKEN" not in sent

    (project.root / ".env.preview").write_text("CLAUDE_ACCESS_TOKEN=pasted-by-mistake\n")
    refused = project.inv("preview", "--mode", "ai-server-only", "--pr", "7", *FAST)
    assert refused.returncode == 1
    assert "would receive CLAUDE_ACCESS_TOKEN, which nixfly.preview.secrets does not list" in refused.stderr
    assert "CLAUDE_ACCESS_TOKEN" not in control.secrets(project.sim, app)


def test_bad_input_is_refused_before_anything_changes(project, fake_result):
    cases = [
        (("preview", "--pr", "12a", *FAST), "--pr '12a' is not a pull request number"),
        (("preview.destroy", "--pr", "-3"), "--pr '-3' is not a pull request number"),
        (("preview.prune", "--older-than", "7days"), "--older-than '7days' is not a duration"),
    ]
    # A dry run changes nothing either.
    assert project.inv("preview", "--pr", "1", "--dry-run", *FAST).returncode == 0
    assert not (project.root / ".nixfly" / "preview").exists()
    for args, message in cases:
        result = project.inv(*args)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
    (project.root / "invoke.yaml").write_text(
        (project.root / "invoke.yaml").read_text()
        + '  preview:\n    name: "{app}-preview-of-pull-request-{pr}-of-this-project-on-github-dot-com"\n'
    )
    too_long = project.inv("preview", "--pr", "12", *FAST)
    assert too_long.returncode == 1
    assert "is not one Fly accepts (68 characters, at most 63)" in too_long.stderr
    assert [c for c in project.commands() if c in MUTATING] == []
    assert control.apps(project.sim) == []
