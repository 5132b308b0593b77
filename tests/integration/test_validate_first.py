"""Bad input is refused before anything changes on Fly: the deploy fails, and every flyctl call it made was a
read (no apps create, volumes create, secrets import or deploy)."""

from __future__ import annotations

import pytest
from flyctl_sim import control
from helpers.adversarial import READS
from helpers.project import CANARY, steps

FAST = ("--skip-build", "--skip-smoke")
ALSO_READS = {"platform regions", "auth token"}


def env_without_token(value):
    others = "".join(f"{k}={v}\n" for k, v in CANARY.items() if k != "CLAUDE_ACCESS_TOKEN")
    return others + (f"CLAUDE_ACCESS_TOKEN={value}\n" if value is not None else "")


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("1 MiB secret", "CLAUDE_ACCESS_TOKEN"),
        ("missing token", "lacks required secrets: CLAUDE_ACCESS_TOKEN"),
        ("empty token", "lacks required secrets: CLAUDE_ACCESS_TOKEN"),
        ("bad nix options", "NIXFLY_NIX_OPTIONS cannot be parsed"),
        ("deprecated region", "region ams is not one Fly offers"),
    ],
)
def test_bad_input_changes_nothing_on_fly(project, fake_result, case, needle):
    args, env = [*FAST, "--json"], {}
    if case == "1 MiB secret":
        (project.root / ".env").write_text(env_without_token("x" * (1 << 20)))
    elif case == "missing token":
        (project.root / ".env").write_text(env_without_token(None))
    elif case == "empty token":
        (project.root / ".env").write_text(env_without_token(""))
    elif case == "bad nix options":
        env["NIXFLY_NIX_OPTIONS"] = "--option sandbox 'false"
    else:
        control.deprecate_region(project.sim, "ams")
        args += ["--region", "ams"]
    result = project.inv("deploy", *args, env=env)
    assert result.returncode == 1, result.stderr
    assert needle in result.stderr
    failed = [step for step, (status, _) in steps(result).items() if status == "failed"]
    assert len(failed) == 1 and failed[0] in ("preflight", "app"), steps(result)
    changes = [c for c in project.commands() if c not in READS | ALSO_READS]
    assert changes == [], f"flyctl was asked to change something: {changes}"
    assert control.apps(project.sim) == []
    assert "x" * 1000 not in result.stderr + result.stdout
