"""nixfly.doctor: every precondition as one table, failing on what blocks a deploy."""

from __future__ import annotations

import shutil

import pytest
from flyctl_sim.control import BIN_DIR
from helpers.fakes import ScriptedRunner, checkout, settings
from helpers.project import REPO

from nixfly import doctor
from nixfly.errors import NixflyError

FLAKES = "experimental-features = nix-command flakes\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{BIN_DIR}:/usr/bin:/bin")
    root = checkout(tmp_path)
    for name in ("flake.nix", "flake.lock"):
        (root / name).write_text("{}")
    (root / "ai-server").mkdir()
    for name in ("bun.lock", "package.json", "deps.json"):
        shutil.copy(REPO / "ai-server" / name, root / "ai-server" / name)
    return root


def runner(**over) -> ScriptedRunner:
    r = ScriptedRunner(tools=["nix"])
    r.on("--version", program="nix", stdout="nix (Nix) 2.8.0")
    r.on("show-config", program="nix", stdout=over.get("config", FLAKES))
    r.on("version", program="flyctl", stdout=over.get("flyctl", '{"Version": "0.4.87"}'))
    r.on("auth", "whoami", stdout='{"email": "me@example.com"}')
    r.on(program="git", code=128)  # not a git checkout
    return r


def levels(checks) -> dict[str, str]:
    return {c.name: c.level for c in checks}


def test_a_ready_checkout_passes_every_check_but_the_git_ones(project):
    s = settings(project)
    (project / ".env.fly").write_text("CLAUDE_ACCESS_TOKEN='x-token'\n")
    (project / ".env.fly").chmod(0o600)
    checks = doctor.run_checks(s, runner())
    found = levels(checks)
    assert found["nix"] == "ok" and found["flakes"] == "ok" and found["flyctl"] == "ok"
    assert found["flyctl login"] == "ok" and found[".env.fly mode"] == "ok" and found[".env.fly keys"] == "ok"
    assert found["npm deps"] == "ok"
    assert found[".env.fly ignored"] == "warn"  # not a git checkout: nothing proves it is never committed
    assert "git" not in found
    assert next(c.detail for c in checks if c.name == "nix") == "version 2.8.0"


@pytest.mark.parametrize(
    ("answer", "shown", "lacks"),
    [
        ('{"Version": "0.4.87"}', "flyctl v0.4.87", []),
        ('{"Version": "0.4.20"}', "flyctl v0.4.20", ["v0.4.56"]),
        ('{"Version": "0.3.172"}', "flyctl v0.3.172", ["v0.4.14", "v0.4.56"]),
        ('{"Version": "dev"}', "flyctl of unknown version", ["v0.4.14", "v0.4.56"]),
    ],
)
def test_the_doctor_shows_the_flyctl_version_and_what_an_older_one_lacks(project, answer, shown, lacks):
    [check] = [c for c in doctor.run_checks(settings(project), runner(flyctl=answer)) if c.name == "flyctl"]
    assert check.detail.startswith(shown)
    assert check.level == ("warn" if lacks else "ok")
    assert [release for release in ("v0.4.14", "v0.4.56") if f"{release} " in check.detail] == lacks
    if lacks:
        assert "nix develop" in check.detail


def test_what_blocks_a_deploy_fails_the_doctor(project, capsys):
    s = settings(project)
    (project / ".env.fly").write_text("OTHER='x'\n")
    (project / ".env.fly").chmod(0o644)
    with pytest.raises(NixflyError) as info:
        doctor.report(s, runner(config="experimental-features = nix-command\n"))
    assert info.value.message == "2 required check(s) failed: .env.fly mode, .env.fly keys"
    table = capsys.readouterr().err
    assert "chmod 600 .env.fly" in table and "missing CLAUDE_ACCESS_TOKEN" in table
    assert "| flakes " in table and "warn" in table


def test_no_nix_no_flyctl_no_env_fly(project, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    found = levels(doctor.run_checks(settings(project), ScriptedRunner().on(program="git", code=128)))
    assert (found["nix"], found["flakes"], found["flyctl"], found[".env.fly"]) == (
        "FAIL",
        "FAIL",
        "FAIL",
        "FAIL",
    )
    assert "flyctl login" not in found  # not asked without a flyctl


def test_a_broken_config_file_is_named(project):
    (project / "nixpacks.toml").write_text("[broken")
    checks = doctor.run_checks(settings(project), runner())
    assert next(c for c in checks if c.name == "nixpacks.toml").detail.startswith("cannot parse: ")


def test_the_builder_row_says_which_builder_why_and_whether_it_can_work_here(project, monkeypatch):
    monkeypatch.setattr("platform.system", lambda: "Linux")
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    image = doctor.builder(settings(project, builder="image"))
    assert (image.level, image.detail.split(":")[0]) == ("ok", "image (the default)")
    nixpacks = doctor.builder(settings(project, builder="nixpacks"))
    assert nixpacks.level == "ok" and nixpacks.detail.startswith("nixpacks (nixfly.builder in invoke.yaml)")
    assert "nixpacks.toml" in nixpacks.detail and "not the closure the smoke tests ran" in nixpacks.detail
    monkeypatch.setattr("platform.system", lambda: "Darwin")
    monkeypatch.setattr("platform.machine", lambda: "arm64")
    mac = doctor.builder(settings(project, builder="image"))
    assert mac.level == "warn" and "builds aarch64-darwin images and Fly runs x86_64-linux" in mac.detail
    assert "--on user@x86_64-linux-host" in mac.detail and "--builder nixpacks" in mac.detail
