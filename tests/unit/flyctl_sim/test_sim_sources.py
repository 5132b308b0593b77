"""The simulator follows sources: no unsourced marks left, and the rules corrected against flyctl's source."""

from __future__ import annotations

import json
from pathlib import Path

import flyctl_sim
from flyctl_sim import control
from helpers.sim import APP, fails, fly, ok, write_toml

SIM_DIR = Path(flyctl_sim.__file__).parent


def test_no_unverified_marks_in_the_simulator() -> None:
    """Every behaviour cites flyctl's / fly-go's source, or says it is Fly's servers' and where it was
    seen."""
    files = sorted(p for p in SIM_DIR.rglob("*") if p.is_file() and p.suffix in {".py", ".md", ""})
    assert any(p.name == "README.md" for p in files) and len(files) > 20
    marked = [
        f"{path.relative_to(SIM_DIR)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "UNVERIFIED" in line
    ]
    assert marked == []


def test_machine_destroy_checks_before_any_lookup(home: Path) -> None:
    """select.go checkSelectConditions, then flaps Get: the unknown app fails on the first machine."""
    control.create_app(home, APP)
    assert fails(home, "machine", "destroy") == "Error: a machine ID or an app name is required\n"
    assert fails(home, "machine", "destroy", "-a", "nope") == (
        "Error: a machine ID must be specified when not running interactively\n"
    )
    assert fails(home, "machine", "destroy", "m1", "-a", "nope") == (
        "Error: could not get machine m1: failed to get VM m1: app not found\n"
    )


def test_auth_token_notice_quiet_and_json(home: Path) -> None:
    """auth/token.go runAuthToken: the notice on stderr unless --quiet (from v0.2.116); --json alone."""
    token = control.DEFAULT_TOKEN
    proc = fly(home, "auth", "token")
    assert proc.stdout == f"{token}\n"
    assert proc.stderr == "The 'fly auth token' command is deprecated. Use 'fly tokens create' instead.\n"
    assert fly(home, "auth", "token", "-q").stderr == ""
    proc = fly(home, "auth", "token", "--json")
    assert json.loads(proc.stdout) == {"token": token} and proc.stderr == ""
    control.set_version(home, "0.2.115")
    assert fly(home, "auth", "token").stderr == ""


def test_releases_json_leaves_unqueried_fields_zero(home: Path, deployed: Path) -> None:
    """fly-go GetAppReleasesMachines selects no strategy, progress, metadata or evaluation id."""
    (release,) = json.loads(ok(home, "releases", "-a", APP, "--json"))
    assert release["Status"] == "complete" and release["Stable"] is True
    assert (
        release["DeploymentStrategy"],
        release["InProgress"],
        release["Metadata"],
        release["EvaluationID"],
    ) == (
        "",
        False,
        None,
        "",
    )


def test_a_missing_explicit_config_fails_from_v0_4_80(home: Path, tmp_path: Path) -> None:
    """command.go LoadAppConfigIfPresent (#4699): even with -a, before the app is looked up."""
    control.create_app(home, APP)
    expected = "Error: config file not found at specified path: gone.toml (also tried: gone.toml/fly.toml)\n"
    assert fails(home, "status", "-a", APP, "-c", "gone.toml", cwd=tmp_path) == expected
    control.set_version(home, "0.4.79")
    assert json.loads(ok(home, "status", "-a", APP, "-c", "gone.toml", "-j", cwd=tmp_path))["Name"] == APP


def test_volume_create_refusals_carry_fly_gos_prefix(home: Path) -> None:
    control.create_app(home, APP)
    err = fails(home, "volumes", "create", "my-data", "-a", APP, "-y", "-r", "ord")
    assert err.startswith("Error: failed to create volume: Name may only contain")


def test_a_dockerfile_builds_steps_go_to_stderr(home: Path, tmp_path: Path) -> None:
    """imgsrc/buildkit.go and dockerfile_builder.go display build progress on stderr."""
    control.create_app(home, APP)
    workdir = tmp_path / "app"
    write_toml(workdir, "")
    (workdir / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    proc = fly(home, "deploy", "-a", APP, "--build-only", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "#9 6.102" in proc.stderr and "#9 6.102" not in proc.stdout
