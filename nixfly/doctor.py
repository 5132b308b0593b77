"""``inv doctor``: every precondition of a deploy, checked and shown as one table."""

from __future__ import annotations

import json
import os
import platform
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from nixfly import bundle, console, deps, envfiles, flytoml, git
from nixfly.config import Settings
from nixfly.errors import NixflyError
from nixfly.flyctl import Flyctl, find_executable
from nixfly.flysecrets import describe
from nixfly.nix import Nix
from nixfly.runner import Runner

# FAIL is the one that makes `inv doctor` exit non-zero; it is upper-case so it stands out in the table.
Level = Literal["ok", "warn", "FAIL"]


# What nixfly relies on, by the first flyctl release that has it (older ones are still driven, with less).
FLYCTL_NEEDS = (
    ((0, 4, 14), "strips a pair of '…' in `secrets import` (parser.go): older ones get some values refused"),
    (
        (0, 4, 56),
        "prints the release a deploy made (FLY_EMIT_RELEASE_JSON, machines_deploymachinesapp.go): older ones "
        "leave nixfly unable to tell which release to verify",
    ),
)
NEWER_FLYCTL = " — `nix develop` gives a new enough flyctl"


def flyctl_lacks(release: tuple[int, int, int] | None) -> list[tuple[str, str]]:
    """(first release, what it brings) for each thing ``release`` lacks; None (unreadable) lacks them all."""
    return [
        ("v" + ".".join(map(str, since)), what)
        for since, what in FLYCTL_NEEDS
        if release is None or release < since
    ]


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str


def _guard(name: str, probe: Callable[[], Check]) -> Check:
    try:
        return probe()
    except NixflyError as exc:
        return Check(name, "FAIL", str(exc))


def builder(s: Settings) -> Check:
    """Which builder a deploy to Fly would use, why, and whether it can work from this machine."""
    from nixfly.buildhost import FLY_SYSTEM, nix_system
    from nixfly.config import DEFAULTS

    why = "the default" if s.builder == DEFAULTS["builder"] else "nixfly.builder in invoke.yaml"
    if s.builder == "nixpacks":
        return Check(
            "builder",
            "ok",
            f"nixpacks ({why}): Fly's remote Docker builder rebuilds the app from {s.mode.nixpacks_config}, "
            "so what ships is not the closure the smoke tests ran; --builder image ships that closure",
        )
    here = nix_system(platform.system(), platform.machine())
    if here != FLY_SYSTEM:
        return Check(
            "builder",
            "warn",
            f"image ({why}), but this machine builds {here} images and Fly runs {FLY_SYSTEM}: deploy with "
            "--on user@x86_64-linux-host, or --builder nixpacks",
        )
    return Check(
        "builder",
        "ok",
        f"image ({why}): Nix builds an OCI image of the smoke-tested closure, skopeo pushes it; no Docker",
    )


def run_checks(s: Settings, runner: Runner) -> list[Check]:
    # Before any check runs nix: a flake command copies every tracked file into the store.
    git.refuse_tracked_secrets(runner, s.root)
    nix = Nix(runner, s.root)
    fly = Flyctl(runner, s.flyctl)
    checks: list[Check] = []

    def nix_present() -> Check:
        if not runner.which("nix"):
            return Check("nix", "FAIL", "not on PATH: install Nix (Debian: apt-get install nix-bin)")
        return Check("nix", "ok", f"version {nix.version()}")

    def flakes() -> Check:
        if not runner.which("nix"):
            return Check("flakes", "FAIL", "nix missing")
        # Text, not --json: Nix 2.8's JSON prints the features as enum numbers.
        out = runner.run(
            ["nix", "--extra-experimental-features", "nix-command", "show-config"],
            mutates=False,
            check=False,
            quiet=True,
        )
        features = next(
            (
                line.split("=", 1)[1].split()
                for line in out.stdout.splitlines()
                if line.startswith("experimental-features =")
            ),
            [],
        )
        if "flakes" in features:
            return Check("flakes", "ok", "enabled in nix.conf")
        return Check(
            "flakes",
            "warn",
            "not in nix.conf: nixfly passes the flag itself; add "
            "`experimental-features = nix-command flakes` for your own nix commands",
        )

    def flyctl_present() -> Check:
        find_executable(s.flyctl)
        release = fly.release()
        lacking = [f"{since} {what}" for since, what in flyctl_lacks(release)]
        if release is None or lacking:
            return Check("flyctl", "warn", f"{describe(release)} lacks: {'; '.join(lacking)}{NEWER_FLYCTL}")
        return Check("flyctl", "ok", describe(release))

    def flyctl_auth() -> Check:
        return Check("flyctl login", "ok", f"logged in as {fly.whoami()}")

    def configs() -> list[Check]:
        found = []
        for name in ("flake.nix", "flake.lock", "nixpacks.toml"):
            path = s.root / name
            if not path.exists():
                found.append(Check(name, "FAIL", "missing"))
                continue
            try:
                if name.endswith(".toml"):
                    tomllib.loads(path.read_text())
                elif name.endswith(".lock"):
                    json.loads(path.read_text())
                found.append(Check(name, "ok", "present and parseable"))
            except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
                found.append(Check(name, "FAIL", f"cannot parse: {exc}"))
        try:
            cfg = flytoml.load(s.fly_config)
        except NixflyError as exc:
            return [*found, Check(s.mode.fly_config, "FAIL", str(exc))]
        problems = flytoml.problems(cfg, expected_app=s.app, volume=s.mode.volume)
        found.append(
            Check(
                s.mode.fly_config,
                "ok" if not problems else "warn",
                "parsed, sane" if not problems else "see below",
            )
        )
        found += [
            Check(s.mode.fly_config, "FAIL" if lvl == "error" else "warn", msg) for lvl, msg in problems
        ]
        return found

    def env_file() -> list[Check]:
        path = s.env_file
        if not path.exists():
            return [Check(path.name, "FAIL", "missing: run `inv bundle`")]
        mode = stat.S_IMODE(os.stat(path).st_mode)
        found = [
            Check(
                f"{path.name} mode",
                "ok" if mode == 0o600 else "FAIL",
                f"{mode:o}" + ("" if mode == 0o600 else f": run `chmod 600 {path.name}`"),
            )
        ]
        values = envfiles.read(path)
        missing = [k for k in s.mode.required_secrets if not values.get(k)]
        found.append(
            Check(
                f"{path.name} keys",
                "FAIL" if missing else "ok",
                f"missing {', '.join(missing)}: set them and run `inv bundle`"
                if missing
                else ", ".join(values) or "none",
            )
        )
        return found

    def ignored() -> Check:
        warning = bundle.check_ignored(s.root, s.env_file, runner)
        return Check(f"{s.env_file.name} ignored", "warn" if warning else "ok", warning or "git ignores it")

    checks.append(_guard("nix", nix_present))
    checks.append(_guard("flakes", flakes))
    checks.append(builder(s))
    checks.append(_guard("flyctl", flyctl_present))
    if checks[-1].level == "ok":
        checks.append(_guard("flyctl login", flyctl_auth))
    checks += configs()
    # The ai-server's npm dependencies: deps.json recorded for this bun.lock (content, not mtime).
    checks += [Check("npm deps", "FAIL", p) for p in deps.problems(s.root)] or [
        Check("npm deps", "ok", f"{deps.RECORD} matches {deps.LOCKFILE}")
    ]
    try:
        checks += env_file()
    except NixflyError as exc:
        checks.append(Check(s.env_file.name, "FAIL", str(exc)))
    checks.append(_guard(f"{s.env_file.name} ignored", ignored))
    if git.is_repo(runner, s.root):
        checks.append(Check("git", "ok", f"revision {git.revision(runner, s.root) or '(no commits)'}"))
    return checks


def report(s: Settings, runner: Runner) -> None:
    checks = run_checks(s, runner)
    console.table(
        f"doctor — mode {s.mode.name}, app {s.app}",
        ("check", "status", "detail"),
        [(c.name, c.level, c.detail) for c in checks],
    )
    failed = [c.name for c in checks if c.level == "FAIL"]
    if failed:
        raise NixflyError(
            f"{len(failed)} required check(s) failed: {', '.join(dict.fromkeys(failed))}",
            "fix them as the table says, then run `inv doctor` again",
        )
