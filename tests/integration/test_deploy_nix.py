"""The whole pipeline as users run it: real Nix builds the flake (offline, nixpkgs shim), the real smoke tests
run against ./result, then the simulator takes the deploy. A second run does no work it need not."""

from __future__ import annotations

import json
import os

from flyctl_sim import control
from helpers.project import require, steps

MUTATING = {"apps create", "volumes create", "secrets import", "deploy"}


def test_inv_deploy_integrated_end_to_end_then_a_no_op(project):
    require("nix")
    first = project.inv("deploy", "--mode", "integrated", "--json")
    assert first.returncode == 0, first.stderr
    result = project.root / "result"
    assert result.is_symlink() and os.readlink(result).startswith("/nix/store/")
    built = steps(first)
    assert built["build"][0] == "done"
    assert built["build"][1].startswith(f"built: {os.readlink(result)} (closure ")
    assert built["smoke"] == ("done", "smoke tests passed")
    assert control.app_healthy(project.sim, "oneshot") is True

    before = len(project.flyctl_calls())
    second = project.inv("deploy", "--mode", "integrated", "--json")
    assert second.returncode == 0, second.stderr
    again = steps(second)
    assert again["build"][1].startswith(f"up to date: {os.readlink(result)}")  # no nix build
    assert "$ nix --extra-experimental-features 'nix-command flakes' build" not in second.stderr
    assert again["smoke"] == ("skipped", "passed before for this exact closure")  # no second smoke run
    assert [c for c in project.commands()[before:] if c in MUTATING] == []


def test_ai_server_only_builds_its_own_attribute_and_smokes_it(project):
    require("nix")
    result = project.inv("deploy", "--mode", "ai-server-only", "--json")
    assert result.returncode == 0, result.stderr
    link = project.root / "result-ai-server"
    assert (link / "bin" / "ai-server").exists() and not (link / "bin" / "start-oneshot").exists()
    assert steps(result)["build"][1].startswith(f"built: {os.readlink(link)}")
    assert steps(result)["smoke"] == ("done", "smoke tests passed")


def test_inv_build_prints_store_path_and_size_and_surfaces_nix_errors(project):
    require("nix")
    built = project.inv("build")
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip().startswith("/nix/store/") and "MiB" in built.stderr
    assert "(up to date)" in project.inv("build").stderr  # nixfly's record: nix is not run
    fresh = project.inv("build", "--fresh")
    assert fresh.returncode == 0 and "(up to date)" not in fresh.stderr
    assert fresh.stdout == built.stdout
    # Nix's own --rebuild: the top-level derivation is built again and compared with the store.
    checked = project.inv("build", "--rebuild", "--show-trace")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == built.stdout
    (project.root / "flake.nix").write_text(
        (project.root / "flake.nix").read_text().replace("{", "{ oops", 1)
    )
    broken = project.inv("build")
    assert broken.returncode == 1
    assert "nix build .#oneshot-integrated failed" in broken.stderr
    # Nix's own error is shown, not only nixfly's one line about it.
    nix_said = [line for line in broken.stderr.splitlines() if line.lstrip().startswith("error:")]
    assert [line for line in nix_said if "nix build .#oneshot-integrated failed" not in line], broken.stderr
    assert "Traceback" not in broken.stderr


def test_smoke_failure_stops_the_deploy_before_fly_is_touched(project):
    require("nix")
    echo = project.root / "ai-server" / "src" / "providers" / "echo.ts"
    echo.write_text(echo.read_text().replace("echo: ", "ECHO: "))  # builds fine, answers wrong
    result = project.inv("deploy", "--json")
    assert result.returncode == 1
    assert "smoke tests failed" in result.stderr
    smoke = steps(result)["smoke"]
    assert smoke[0] == "failed" and smoke[1].startswith("smoke tests failed (exit 1): "), smoke
    # The row names each failing test, and --json has each one's output: the echo provider's reply is wrong.
    [record] = [s for s in json.loads(result.stdout)["steps"] if s["step"] == "smoke"]
    failing = record["table"]["rows"]
    assert failing and all(row["test"].startswith("tests/smoke/test_closure.py::") for row in failing)
    assert all(row["test"] in smoke[1] for row in failing)
    assert any("ECHO: " in row["output"] for row in failing), failing
    assert {status for name, (status, _) in steps(result).items() if name in ("app", "deploy")} == {"not run"}
    assert [c for c in project.commands() if c in MUTATING] == []
