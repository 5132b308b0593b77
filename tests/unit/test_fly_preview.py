"""nixfly.fly.preview: which apps are previews (the marker read back), and the marker step's refusals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nixfly import config
from nixfly.errors import NixflyError
from nixfly.fly import preview as fly_preview
from nixfly.flyctl import AppMissing, FlyRelease, SecretInfo
from nixfly.preview import Marker
from nixfly.runner import Runner
from nixfly.target import Options

REPO = Path(__file__).resolve().parents[2]
DEFAULT = config.load_preview(None)


@dataclass
class FakeFly:
    """Apps and their secret names, as ``apps list`` and ``secrets list`` would report them."""

    apps_: dict[str, list[str]]
    asked: list[str] = field(default_factory=list)

    def apps(self) -> list[str]:
        return list(self.apps_)

    def releases(self, app: str) -> list[FlyRelease]:
        return [FlyRelease(1, "complete", "img", "2026-01-02T00:00:00Z", "")] if app == "oneshot-main" else []

    def secrets(self, app: str) -> list[SecretInfo]:
        self.asked.append(app)
        if app not in self.apps_:
            raise AppMissing(f"Could not find App {app!r}")
        return [SecretInfo(name, "Deployed") for name in self.apps_[app]]


def test_find_reads_markers_of_matching_apps_only_and_never_the_production_app(tmp_path):
    s = config.resolve(None, REPO, mode="integrated")
    fly = FakeFly(
        {
            "oneshot": [Marker(1, 5).name],  # production, even if someone marked it
            "oneshot-pr-1": [Marker(1, 5).name, "GH_TOKEN"],
            "oneshot-pr-2": ["GH_TOKEN"],  # the name matches, the marker is missing
            "oneshot-main": [Marker(0, 9).name],
            "someone-else": [Marker(4, 5).name],
        }
    )
    found = fly_preview.find(fly, s, DEFAULT)  # type: ignore[arg-type]
    assert [(f.app, f.marker) for f in found] == [
        ("oneshot-main", Marker(0, 9)),
        ("oneshot-pr-1", Marker(1, 5)),
    ]
    assert sorted(fly.asked) == ["oneshot-main", "oneshot-pr-1", "oneshot-pr-2"]
    assert [(f.updated, f.last_active) for f in found] == [(1767312000, 1767312000), (0, 5)]


@dataclass
class Seen:
    """What the deploy's observation read of an existing app: its secret names."""

    names: list[str]

    def exists(self) -> bool:
        return True

    def secrets(self) -> list[SecretInfo]:
        return [SecretInfo(name, "Deployed") for name in self.names]

    def close(self) -> None:
        """Nothing to stop."""


def target_seeing(names: list[str], tmp_path: Path, **preview: object) -> fly_preview.PreviewTarget:
    s = config.resolve({"state_dir": str(tmp_path / "state")}, REPO, mode="integrated", app="oneshot-pr-12")
    chosen = config.load_preview({"preview": preview})
    target = fly_preview.PreviewTarget(s, Runner(cwd=REPO), Options(), chosen, Marker(12, 100), {})
    target.observed = Seen(names)  # type: ignore[assignment]
    return target


def test_an_existing_app_without_the_marker_is_refused_before_anything_changes(tmp_path):
    with pytest.raises(NixflyError, match="carries no nixfly preview marker: nixfly did not create it"):
        target_seeing(["GH_TOKEN"], tmp_path).ensure_marker()
    with pytest.raises(NixflyError, match="is nixfly's preview of PR 3, not preview of PR 12"):
        target_seeing([Marker(3, 5).name], tmp_path).ensure_marker()
    kept = target_seeing([Marker(12, 5).name], tmp_path).ensure_marker()
    assert (kept.status, kept.detail) == ("skipped", "preview of PR 12 (created 1970-01-01T00:00:05Z)")


def test_the_secrets_step_gets_only_the_listed_production_secrets(tmp_path, monkeypatch):
    sent: list[dict[str, str] | None] = []
    monkeypatch.setattr(
        fly_preview.FlyTarget, "stage_secrets", lambda self, values=None, *, stage=True: sent.append(values)
    )
    target = target_seeing([Marker(12, 5).name], tmp_path, secrets=["GH_TOKEN"])
    target.stage_secrets({"CLAUDE_ACCESS_TOKEN": "prod-claude", "GH_TOKEN": "prod-gh"})
    assert sent == [{"GH_TOKEN": "prod-gh"}]


def test_a_preview_runs_the_deploy_steps_plus_marker_and_url(tmp_path):
    from nixfly.buildhost import BuildHost
    from nixfly.fly.target import FlyTarget
    from nixfly.target import Candidate

    target = target_seeing([], tmp_path)
    deploy = [
        n
        for n, _ in FlyTarget(target.s, target.runner).deploy_steps(
            Candidate(), BuildHost(target.s, target.runner)
        )
    ]
    preview = [n for n, _ in target.deploy_steps(Candidate(), BuildHost(target.s, target.runner))]
    at = deploy.index("app") + 1
    assert preview == [*deploy[:at], "marker", *deploy[at:], "url"]
    assert target.ha is False and FlyTarget.ha is True


def test_without_pr_the_branch_names_the_preview_and_a_detached_head_is_refused(tmp_path):
    import subprocess

    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    git = ["git", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q", "-b", "Feature/Login"], check=True)
    subprocess.run(
        [*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True, env={**env, "PATH": "/usr/bin:/bin"}
    )
    s = config.resolve(None, tmp_path, mode="integrated")
    assert fly_preview.name_for(s, Runner(cwd=tmp_path), DEFAULT, "") == ("oneshot-feature-login", 0)
    assert fly_preview.name_for(s, Runner(cwd=tmp_path), DEFAULT, "9") == ("oneshot-pr-9", 9)
    subprocess.run([*git, "checkout", "-q", "--detach"], check=True)
    with pytest.raises(NixflyError, match=r"not on a branch \(detached HEAD\)"):
        fly_preview.name_for(s, Runner(cwd=tmp_path), DEFAULT, "")
