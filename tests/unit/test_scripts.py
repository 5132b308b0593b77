"""The old entry points in scripts/ hand over to `inv` and refuse arguments they do not know.

A stand-in `inv` on PATH records what it was asked to do, so a refused call is seen to reach nothing (the
seed's bundle-credentials.sh took `--dry-run` for a file name and wrote it).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "scripts" / "bundle-credentials.sh"
OLD_BUNDLE = REPO / "ai-server" / "scripts" / "bundle-credentials.sh"
DEPLOY = REPO / "scripts" / "deploy-fly-nix.sh"
START = REPO / "scripts" / "start-oneshot"


@pytest.fixture
def fake_inv(tmp_path: Path) -> Path:
    """A directory whose `inv` writes its argv, one word a line, to ``calls`` and exits 0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    inv = bin_dir / "inv"
    inv.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "calls"}\n')
    inv.chmod(inv.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{cwd / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30)


def calls(tmp: Path) -> list[str] | None:
    path = tmp / "calls"
    return path.read_text().splitlines() if path.exists() else None


@pytest.mark.parametrize(
    "args",
    [
        ("--dry-run",),
        ("-n",),
        (".env.fly", "--dry-run"),
        ("a", "b"),
    ],
)
@pytest.mark.parametrize("script", [BUNDLE, OLD_BUNDLE], ids=["scripts", "ai-server/scripts"])
def test_bundle_refuses_what_it_does_not_know(fake_inv, script, args):
    result = run(script, *args, cwd=fake_inv)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "[ENV_FILE]" in result.stderr
    assert calls(fake_inv) is None  # inv was never called
    assert not list(fake_inv.glob("*.env*")) and not (fake_inv / "--dry-run").exists()


@pytest.mark.parametrize("script", [BUNDLE, OLD_BUNDLE], ids=["scripts", "ai-server/scripts"])
def test_bundle_hands_one_env_file_to_inv_bundle(fake_inv, script):
    result = run(script, "creds.env", cwd=fake_inv)
    assert result.returncode == 0, result.stderr
    assert calls(fake_inv) == ["bundle", "--env-file", str(fake_inv / "creds.env")]
    assert run(script, cwd=fake_inv).returncode == 0
    assert calls(fake_inv) == ["bundle", "--env-file", str(fake_inv / ".env.fly")]


def test_bundle_help_is_usage_on_stdout(fake_inv):
    result = run(BUNDLE, "--help", cwd=fake_inv)
    assert result.returncode == 0 and "usage:" in result.stdout
    assert calls(fake_inv) is None


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("oneshot",),
        ("--dry-run", "integrated"),
        ("oneshot", "--dry-run"),
        ("oneshot", "staging"),
    ],
)
def test_deploy_refuses_a_missing_app_or_an_unknown_mode(fake_inv, args):
    result = run(DEPLOY, *args, cwd=fake_inv)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "integrated | ai-server-only" in result.stderr
    assert calls(fake_inv) is None


def test_deploy_passes_extra_flags_to_inv_deploy(fake_inv):
    result = run(DEPLOY, "my-app", "ai-server-only", "--dry-run", cwd=fake_inv)
    assert result.returncode == 0, result.stderr
    assert calls(fake_inv) == ["deploy", "--app", "my-app", "--mode", "ai-server-only", "--dry-run"]


def test_start_oneshot_takes_no_arguments(tmp_path):
    result = subprocess.run([str(START), "--port", "4000"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "usage: start-oneshot" in result.stderr
