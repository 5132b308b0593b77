"""No secret reaches the world-readable Nix store: while git tracks .env every task that would copy the
checkout into the store refuses before Nix runs, and what a build creates never holds a secrets file's
value (the flake filters .env and .env.* out of every source it builds, whatever git tracks)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from helpers.project import CANARY, REPO, require, steps

STORE = Path("/nix/store")
SECRET = CANARY["CLAUDE_ACCESS_TOKEN"]


def git(project, *args):
    subprocess.run(["git", *args], cwd=project.root, env=project.env, check=True, capture_output=True)


def holding_the_canary(paths):
    """The store paths (files under them, links not followed) whose bytes hold the canary."""
    found = []
    for path in paths:
        result = subprocess.run(["grep", "-rlF", "--no-messages", SECRET, str(path)], capture_output=True)
        found += result.stdout.decode().split()
    return found


def closure(link):
    out = subprocess.run(["nix-store", "-qR", str(link)], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_a_tracked_env_stops_every_task_and_no_build_stores_a_secret(project):
    require("nix-store")
    before = set(os.listdir(STORE))
    git(project, "add", "-f", ".env")
    git(project, "commit", "-qm", "oops: .env")

    doctor = project.inv("doctor")
    assert doctor.returncode == 1 and "git rm --cached .env" in doctor.stderr
    assert project.inv("build").returncode == 1
    deploy = project.inv("deploy", "--json")
    assert deploy.returncode == 1 and steps(deploy)["preflight"][0] == "failed"
    assert "git tracks secrets files: .env" in deploy.stderr and project.commands() == []
    assert holding_the_canary(STORE / name for name in set(os.listdir(STORE)) - before) == []

    # Untracked again, and a secrets file inside a built source tracked by mistake: built with plain
    # `nix build` (nixfly would refuse it too), the closure leaves it out.
    git(project, "rm", "-q", "--cached", ".env")
    (project.root / "web" / ".env.local").write_text(f"TOKEN={SECRET}\n")
    (project.root / "ai-server" / ".env").write_text(f"TOKEN={SECRET}\n")
    git(project, "add", "-f", "web/.env.local", "ai-server/.env")
    assert "git rm --cached ai-server/.env web/.env.local" in project.inv("build").stderr
    options = subprocess.run(
        ["bash", "-c", 'eval "set -- $NIXFLY_NIX_OPTIONS"; printf "%s\\0" "$@"'],
        env=project.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")[:-1]
    for attr, link in (("oneshot-integrated", "result"), ("oci-image-integrated", "result-image")):
        subprocess.run(
            [
                "nix",
                "--extra-experimental-features",
                "nix-command flakes",
                "build",
                f".#{attr}",
                "--out-link",
                link,
                *options,
            ],
            cwd=project.root,
            env=project.env,
            check=True,
            capture_output=True,
        )
    shipped = closure(project.root / "result") + closure(project.root / "result-image")
    assert holding_the_canary(shipped) == []
    # Only the flake's own copy of the checkout (Nix makes it before flake.nix is read, and it stays on
    # this machine) holds the tracked files: that is why nixfly refuses to run while git tracks them.
    new = [STORE / name for name in set(os.listdir(STORE)) - before]
    assert {Path(p).parts[3].split("-", 1)[1] for p in holding_the_canary(new)} <= {"source"}


def nix_eval(expr):
    return subprocess.run(
        [
            "nix",
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--impure",
            "--json",
            "--expr",
            expr,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_stand_ins_clean_source_with_behaves_as_nixpkgs(tmp_path):
    """tests/nix's lib.cleanSourceWith, as nixpkgs lib/sources.nix defines it: only src, filter and name;
    filters compose (both must keep a file) and copy once; the name is given, else inherited, else
    "source"."""
    require("nix")
    lib = REPO / "tests" / "nix" / "nixpkgs-shim" / "lib.nix"
    for name in ("a.txt", "b.txt", ".env"):
        (tmp_path / name).write_text(name)
    inner = (
        f'lib.cleanSourceWith {{ src = {tmp_path}; name = "inner"; filter = p: t: baseNameOf p != ".env"; }}'
    )
    outer = f'lib.cleanSourceWith {{ src = {inner}; filter = p: t: baseNameOf p != "b.txt"; }}'
    let = f"let lib = import {lib}; in "
    listed = nix_eval(
        f'{let}let s = {outer}; in {{ files = builtins.attrNames (builtins.readDir "${{s}}"); '
        f"name = s.name; plain = (lib.cleanSourceWith {{ src = {tmp_path}; }}).name; }}"
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"files": ["a.txt"], "name": "inner", "plain": "source"}
    refused = nix_eval(f"{let}(lib.cleanSourceWith {{ src = {tmp_path}; root = {tmp_path}; }}).name")
    assert refused.returncode == 1 and "unexpected argument 'root'" in refused.stderr
