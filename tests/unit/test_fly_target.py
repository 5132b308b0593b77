"""nixfly.fly.target: the Fly deploy's steps through real ``Flyctl`` argv, answered by a small fake Fly.

The fake keeps just enough state (app, volumes, secrets, releases, machines) to answer flyctl's reads the way
flyctl prints them, so each test reads as a deploy: what was read, what was changed, what was decided.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flyctl_sim.control import BIN_DIR
from helpers.fakes import PINNED, STORE, BuildHere, Call, ScriptedRunner, Served, checkout, serving, settings

from nixfly import flyctl, flytoml
from nixfly.config import Settings
from nixfly.engine import Engine
from nixfly.errors import NixflyError
from nixfly.fly import FlyTarget
from nixfly.fly.verify import min_machines_running
from nixfly.flyctl import Flyctl
from nixfly.pipeline import Pipeline
from nixfly.runner import Completed, here
from nixfly.target import Options

APP = "oneshot"
MISSING = Completed((), 1, "", f'Error: Could not find App "{APP}"\n')
MUTATING = ("apps create", "volumes create", "secrets import", "deploy")


class FakeFly:
    """Fly's state for one app, read and changed through flyctl's argv; the health URL follows the release."""

    def __init__(self, health: Served) -> None:
        self.health = health
        self.exists = False
        self.volumes: list[dict] = []
        self.secrets: dict[str, str] = {}  # name → Staged | Deployed
        self.releases: list[dict] = []
        self.machines: list[dict] = []
        self.next_deploy = "pass"  # or "fail": checks never pass
        self.silent = False  # machines started by --strategy immediate report no check results (yet)
        self.runner = ScriptedRunner()
        self.runner.answer(with_=self.answer)

    def answer(self, call: Call) -> Completed:
        words = call.argv[1:]
        command = " ".join(w for w in words[:2] if not w.startswith("-"))
        if command == "auth whoami":
            return ok({"email": "me@example.com"})
        if command == "version":  # version.go: buildinfo.Info() as JSON
            return ok({"Name": "flyctl", "Version": "0.4.87", "Environment": "production"})
        if command == "apps create":
            self.exists = True
            return ok("")
        if command == "auth token":  # the registry login for a nixpacks release's receipt (no skopeo here)
            return ok("fm2_unit")
        if command == "platform regions":
            return ok([{"code": code, "deprecated": False} for code in ("ams", "iad", "ord")])
        if not self.exists:
            return MISSING
        if command == "status":
            return ok({"Name": APP, "Status": "deployed", "Version": self.version, "Machines": self.machines})
        if command == "volumes list":
            return ok(self.volumes)
        if command == "volumes create":
            region = words[words.index("--region") + 1]
            self.volumes.append({"id": f"vol_{len(self.volumes)}", "name": words[2], "region": region})
            return ok("")
        if command == "secrets list":
            return ok([{"name": n, "status": st} for n, st in self.secrets.items()])
        if command == "secrets import":
            assert call.stdin is not None
            names = [line.split("=", 1)[0] for line in call.stdin.splitlines() if "=" in line]
            self.secrets.update(dict.fromkeys(names, "Staged" if "--stage" in words else "Deployed"))
            return ok("")
        if command == "releases":
            return ok(
                [
                    {"Version": r["version"], "Status": r["status"], "ImageRef": r["image"]}
                    for r in self.releases
                ]
            )
        if command == "checks list":
            return ok({})
        if command == "deploy":
            return self.deploy(words)
        raise AssertionError(f"the fake Fly does not know {words}")

    @property
    def version(self) -> int:
        return max((r["version"] for r in self.releases), default=0)

    def deploy(self, words: tuple[str, ...]) -> Completed:
        version = self.version + 1
        image = (
            words[words.index("--image") + 1]
            if "--image" in words
            else f"registry.fly.io/{APP}:deployment-{version}"
        )
        healthy = self.next_deploy == "pass"
        self.next_deploy = "pass"
        self.releases.append(
            {"version": version, "status": "complete" if healthy else "failed", "image": image}
        )
        check = "passing" if healthy else "critical"
        silent = self.silent and "immediate" in words  # flyctl does not wait for checks then
        self.machines = [
            {
                "id": f"m{i}",
                "state": "started",
                "config": {
                    "image": image,
                    "metadata": {"fly_release_version": version},
                    "checks": {"alive": {"type": "http", "port": 8080}},
                },
                "checks": [] if silent else [{"name": "alive", "status": check}],
            }
            for i in (1, 2)
        ]
        self.secrets = dict.fromkeys(self.secrets, "Deployed")
        self.health.body = {"status": "ok", "release": image}
        if not healthy:
            return Completed((), 1, "", "Error: timeout reached waiting for health checks to pass\n")
        line = json.dumps({"id": f"rel_{version}", "version": version, "image_ref": image})
        return ok(f"building {{noise}}\n{line}\nVisit your newly deployed app\n")

    def commands(self) -> list[str]:
        return [" ".join(w for w in c.argv[1:3] if not w.startswith("-")) for c in self.runner.calls]

    def changes(self) -> list[str]:
        return [c for c in self.commands() if any(c.startswith(m) for m in MUTATING)]


def ok(data: object) -> Completed:
    return Completed((), 0, data if isinstance(data, str) else json.dumps(data), "")


@pytest.fixture
def fly(monkeypatch) -> Iterator[FakeFly]:
    monkeypatch.setenv("PATH", f"{BIN_DIR}:/usr/bin:/bin")  # find_executable finds a flyctl; none runs
    for name in (*flyctl.TOKEN_ENV, "CLAUDE_ACCESS_TOKEN", "GH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with serving() as health:
        yield FakeFly(health)


@pytest.fixture
def s(tmp_path, fly) -> Settings:
    root = checkout(tmp_path / "checkout")
    (root / ".env").write_text("CLAUDE_ACCESS_TOKEN=canary-fly-target-1\n")
    return settings(root, health_url=fly.health.url)


def deploy(
    s: Settings, fly: FakeFly, build: BuildHere | None = None, **options: bool
) -> tuple[Pipeline | None, FlyTarget, NixflyError | None]:
    fly.runner.dry_run = s.dry_run
    target = FlyTarget(s, fly.runner, Options(**options))
    target.fly = Flyctl(fly.runner)
    error = None
    pipeline = None
    try:
        # The engine's own commands (git) run for real; Fly's go to the fake.
        pipeline = Engine(s, here(s), target.options, target, build or BuildHere()).run()
    except NixflyError as exc:
        error = exc
    finally:
        target.close()
    return pipeline, target, error


def steps(pipeline: Pipeline | None) -> dict[str, str]:
    assert pipeline is not None
    return {r.step: r.status for r in pipeline.records}


def test_a_first_deploy_creates_the_app_its_volume_and_secrets_then_deploys(s, fly):
    pipeline, _, error = deploy(s, fly)
    assert error is None
    assert steps(pipeline) == {
        "preflight": "done",
        "lock": "done",
        "build": "done",
        "smoke": "done",
        "bundle": "done",
        "diff": "skipped",  # a new app: everything is new
        "app": "done",
        "volume": "done",
        "secrets": "done",
        "image": "skipped",
        "release": "done",
        "deploy": "done",
        "verify": "done",
        "receipt": "skipped",  # nixpacks: receipts are kept beside nixfly's own images
    }
    assert pipeline is not None and pipeline.records[10].detail == "first deploy: nothing to roll back to"
    assert fly.changes() == ["apps create", "volumes create", "secrets import", "deploy"]
    assert fly.volumes == [{"id": "vol_0", "name": "oneshot_data", "region": s.region}]
    assert fly.secrets == {"CLAUDE_ACCESS_TOKEN": "Deployed"}
    record = json.loads((s.state_dir / f"deployed-{APP}.json").read_text())
    assert record["version"] == 1


def test_a_no_change_redeploy_changes_nothing_and_reads_each_thing_once(s, fly):
    deploy(s, fly)
    fly.runner.calls.clear()
    pipeline, _, error = deploy(s, fly)
    assert error is None
    assert {k: v for k, v in steps(pipeline).items() if k in ("app", "volume", "secrets", "deploy")} == {
        "app": "skipped",
        "volume": "skipped",
        "secrets": "skipped",
        "deploy": "skipped",
    }
    assert pipeline is not None and pipeline.records[-2].detail.startswith("v1 still healthy: 2 machine(s)")
    assert fly.changes() == []
    # One round of concurrent reads (whoami among them, once the lock is held); verify judged from them.
    # `auth token`: the registry login that reads the live release's receipt (no skopeo here: unread).
    assert sorted(fly.commands()) == sorted(
        ["auth whoami", "status", "volumes list", "secrets list", "releases", "version", "auth token"]
    )


def test_a_changed_secret_is_staged_alone_and_deployed(s, fly):
    deploy(s, fly)
    (s.root / ".env").write_text("CLAUDE_ACCESS_TOKEN=rotated-0001\nGH_TOKEN=canary-gh-2\n")
    fly.runner.calls.clear()
    pipeline, _, error = deploy(s, fly)
    assert error is None
    assert fly.changes() == ["secrets import", "deploy"]
    staged = next(c for c in fly.runner.calls if c.argv[1:3] == ("secrets", "import"))
    assert [line.split("=")[0] for line in (staged.stdin or "").splitlines()] == [
        "CLAUDE_ACCESS_TOKEN",
        "GH_TOKEN",
    ]
    assert steps(pipeline)["deploy"] == "done"


def test_force_redeploys_what_did_not_change(s, fly):
    deploy(s, fly)
    fly.runner.calls.clear()
    pipeline, _, _ = deploy(s, fly, force=True)
    assert fly.changes() == ["deploy"]
    assert pipeline is not None and "(--force)" in pipeline.records[-3].detail


def test_a_volume_is_not_created_again_in_another_region(s, fly):
    fly.exists = True
    fly.volumes = [{"id": "vol_x", "name": "oneshot_data", "region": "ams"}]
    pipeline, _, _ = deploy(s, fly)
    assert steps(pipeline)["volume"] == "skipped"
    assert pipeline is not None and pipeline.records[7].detail == "oneshot_data exists (vol_x, ams)"
    assert "volumes create" not in fly.changes()


def test_an_unhealthy_release_is_rolled_back_to_the_previous_image(s, fly):
    deploy(s, fly)
    (s.root / ".env").write_text("CLAUDE_ACCESS_TOKEN=rotated-0002\n")
    fly.next_deploy = "fail"
    fly.runner.calls.clear()
    _, _, error = deploy(s, fly)
    assert error is not None and error.exit_code == 1
    assert error.notes == [f"rolled back to v1 (registry.fly.io/{APP}:deployment-1)"]
    rollback = [c for c in fly.runner.calls if c.argv[1] == "deploy"][-1]
    assert rollback.line.endswith(f"--image registry.fly.io/{APP}:deployment-1 --strategy immediate")
    assert fly.releases[-1] == {
        "version": 3,
        "status": "complete",
        "image": f"registry.fly.io/{APP}:deployment-1",
    }


def test_a_rollback_whose_machines_report_no_checks_yet_is_not_taken_as_healthy(s, fly):
    """After --strategy immediate flyctl waits for nothing: nixfly's gate is flyctl's own (at least one check
    result per machine whose config defines checks), so the silent machines keep it waiting to its end."""
    deploy(s, fly)
    (s.root / ".env").write_text("CLAUDE_ACCESS_TOKEN=rotated-0004\n")
    fly.next_deploy, fly.silent = "fail", True
    _, _, error = deploy(s, fly)
    assert error is not None
    [note] = error.notes
    assert note.startswith("rollback to v1 FAILED too: oneshot is not healthy after")
    assert "no check results yet from m1 (1 configured), m2 (1 configured)" in note


def test_no_rollback_keeps_the_bad_release_and_says_how_to_go_back(s, fly):
    deploy(s, fly)
    (s.root / ".env").write_text("CLAUDE_ACCESS_TOKEN=rotated-0003\n")
    fly.next_deploy = "fail"
    _, _, error = deploy(s, fly, rollback=False)
    assert error is not None and error.notes == ["automatic rollback is off (--no-rollback)"]
    assert error.hint == "`inv rollback --mode integrated` puts the previous release back"
    assert fly.releases[-1]["status"] == "failed"


def test_a_failed_first_deploy_has_nothing_to_roll_back_to(s, fly):
    fly.next_deploy = "fail"
    _, _, error = deploy(s, fly)
    assert error is not None and error.notes == [
        f"this was the first deploy of {APP}: nothing to roll back to"
    ]
    assert fly.changes().count("deploy") == 1


def test_a_dry_run_reads_and_plans_but_changes_nothing(tmp_path, fly):
    root = checkout(tmp_path / "dry")
    (root / ".env").write_text("CLAUDE_ACCESS_TOKEN=canary-fly-target-1\n")
    pipeline, _, error = deploy(settings(root, dry_run=True, health_url=fly.health.url), fly)
    assert error is None
    planned = {k for k, v in steps(pipeline).items() if v == "planned"}
    assert {"lock", "build", "smoke", "bundle", "app", "volume", "secrets", "deploy", "verify"} <= planned
    assert fly.changes() == [] and not fly.exists
    assert not (root / ".nixfly").exists()


@pytest.mark.parametrize("same_closure", [True, False])
def test_a_checkout_changed_after_the_build_ships_only_if_it_builds_the_tested_closure(s, fly, same_closure):
    """nixpacks: Fly's builder builds the checkout as flyctl uploads it. The checkout changed after the
    closure was built and smoke-tested: deployed when it still evaluates to that closure, else refused
    before Fly changes."""
    build = BuildHere()
    changed = "path:/nix/store/11111111111111111111111111111111-source?narHash=sha256-y"
    build.pins = [PINNED, changed]  # at the build, then when the deploy checks, after the smoke tests
    build.evaluates_to = STORE if same_closure else "/nix/store/22222222222222222222222222222222-other"
    _, _, error = deploy(s, fly, build)
    assert f"eval {changed}#oneshot-integrated" in build.asked
    if same_closure:
        assert error is None and "deploy" in fly.changes()
        return
    assert error is not None and f"no longer builds the tested closure {STORE}" in error.message
    assert "Fly's builder would ship untested code" in error.message and fly.changes() == []


def test_preflight_needs_the_modes_nixpacks_config(s, fly):
    (s.root / "nixpacks.toml").unlink()
    _, _, error = deploy(s, fly)
    assert error is not None and error.message == "mode integrated has no nixpacks config (nixpacks.toml)"
    assert fly.changes() == []


def test_min_machines_running_comes_from_the_fly_toml(s):
    text = s.fly_config.read_text()
    assert "min_machines_running = 1" in text
    assert min_machines_running(flytoml.load(s.fly_config)) == 1
    s.fly_config.write_text(text.replace("min_machines_running = 1", "min_machines_running = 3"))
    assert min_machines_running(flytoml.load(s.fly_config)) == 3
    s.fly_config.write_text(text.replace("min_machines_running = 1", ""))
    assert min_machines_running(flytoml.load(s.fly_config)) == 0


def status_target(s: Settings, fly: FakeFly) -> FlyTarget:
    target = FlyTarget(s, fly.runner)
    target.fly = Flyctl(fly.runner)
    return target


def test_status_json_is_what_flyctl_printed_with_the_regions(s, fly, capsys, monkeypatch):
    """One ``status --json`` read: the table's machines and the JSON document both come from it."""
    from nixfly import console

    monkeypatch.setattr(console, "_JSON_PRINTED", False)  # print_json marks the run's one document
    deploy(s, fly)
    fly.runner.calls.clear()
    capsys.readouterr()
    status_target(s, fly).status(as_json=True)
    printed = json.loads(capsys.readouterr().out)
    assert fly.commands() == ["status"]
    assert (printed["Name"], printed["Status"], printed["Version"]) == (APP, "deployed", 1)
    assert [m["id"] for m in printed["Machines"]] == ["m1", "m2"]
    assert [(row["region"], row["machines"]) for row in printed["regions"]] == [("", 2)]


def test_status_of_an_app_fly_does_not_have_says_how_to_make_it(s, fly):
    with pytest.raises(NixflyError, match=f"app {APP} does not exist on Fly.io") as info:
        status_target(s, fly).status(as_json=False)
    assert "inv deploy" in (info.value.hint or "")
    assert fly.commands() == ["status"]  # a missing app is final: not retried
