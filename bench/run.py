"""nixfly's benchmarks (not tests: they report medians and ratios, and never fail on a time).

    python bench/run.py            # or: nox -s bench

1. `inv --list` start-up against an Invoke project with one trivial task, side by side (target: ≤ 1.3x).
2. flyctl calls of a first deploy and of a no-change redeploy (target: the redeploy creates nothing and
   stages no secret), against the flyctl simulator.
3. The image builder on the offline shim build: image size vs closure size, a second push of the unchanged
   image (target: no upload), and the nix builds / pushes of an unchanged redeploy (target: zero).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from flyctl_sim import control  # noqa: E402
from registry import running_registry  # noqa: E402
from support import CANARY, GIT_ENV, Project, copy_checkout, offline_nix_options  # noqa: E402

from nixfly.nix import human_size  # noqa: E402

RUNS = 15
MUTATING = ("apps create", "volumes create", "secrets import", "secrets set", "deploy")


def median_seconds(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_list(tmp: Path) -> list[tuple[str, str]]:
    trivial = tmp / "trivial"
    trivial.mkdir()
    (trivial / "tasks.py").write_text("from invoke import task\n\n\n@task\ndef hello(c):\n    'Say hello.'\n")
    env = dict(os.environ)
    inv = [sys.executable, "-m", "invoke", "--list"]
    base = median_seconds(inv, trivial, env)
    ours = median_seconds(inv, REPO, env)
    return [
        ("`inv --list`, trivial Invoke project (median of 15)", f"{base * 1000:.0f} ms"),
        ("`inv --list`, nixfly (median of 15)", f"{ours * 1000:.0f} ms"),
        ("ratio (target ≤ 1.3)", f"{ours / base:.2f}x"),
    ]


def project_in(tmp: Path) -> tuple[Project, control.HealthServer]:
    root = tmp / "checkout"
    root.mkdir(parents=True)
    copy_checkout(root)
    sim = control.init(tmp / "sim")
    server = control.start_health_server(sim)
    (root / "invoke.yaml").write_text(
        "nixfly:\n  health:\n    timeout: 10\n    interval: 0.2\n"
        f'  modes:\n    integrated:\n      health_url: "{server.url_template}"\n'
    )
    (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in CANARY.items()))
    env = {
        **control.env(sim),
        **GIT_ENV,
        "NO_COLOR": "1",
        "NIXFLY_NIX_OPTIONS": os.environ.get("NIXFLY_NIX_OPTIONS") or offline_nix_options(),
    }
    return Project(root, sim, env), server


def timed_deploy(project: Project, *args: str) -> tuple[float, list[str], str]:
    before = len(project.flyctl_calls())
    started = time.perf_counter()
    result = project.inv("deploy", *args)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"deploy failed:\n{result.stderr}")
    return seconds, project.commands()[before:], result.stderr


def describe(commands: list[str]) -> str:
    counts = Counter(c for c in commands if c)
    return ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))


def bench_deploys(tmp: Path) -> list[tuple[str, str]]:
    project, server = project_in(tmp)
    try:
        first_s, first, _ = timed_deploy(project)
        second_s, second, _ = timed_deploy(project)
    finally:
        server.stop()
    changes = [c for c in second if c in MUTATING]
    return [
        ("first deploy (nixpacks builder, real nix build + smoke)", f"{first_s:.1f} s"),
        ("  flyctl calls", f"{len(first)}: {describe(first)}"),
        ("no-change redeploy", f"{second_s:.1f} s"),
        ("  flyctl calls", f"{len(second)}: {describe(second)}"),
        ("  creates / secrets / deploys on redeploy (target 0)", str(len(changes))),
    ]


def bench_image(tmp: Path) -> list[tuple[str, str]]:
    project, server = project_in(tmp)
    try:
        with running_registry(tmp / "registry") as registry:
            text = (project.root / "invoke.yaml").read_text()
            (project.root / "invoke.yaml").write_text(
                text.replace("nixfly:\n", f"nixfly:\n  registry: {registry.host}\n")
            )
            first_s, _, _ = timed_deploy(project, "--builder", "image")
            started = time.perf_counter()
            push = project.inv("image.push")
            push_s = time.perf_counter() - started
            second_s, second, log = timed_deploy(project, "--builder", "image")
    finally:
        server.stop()
    closure = int(
        subprocess.run(
            [
                "nix",
                "--extra-experimental-features",
                "nix-command",
                "path-info",
                "-S",
                os.path.realpath(project.root / "result"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[1]
    )
    image = os.path.getsize(os.path.realpath(project.root / "result-image"))
    builds = log.count("$ nix ") - log.count("path-info")
    return [
        ("closure of .#oneshot-integrated", human_size(closure)),
        ("image tarball .#oci-image-integrated (uncompressed)", human_size(image)),
        ("first deploy with --builder image", f"{first_s:.1f} s"),
        (
            "`inv image.push` of the unchanged image",
            f"{push_s:.2f} s ({'no upload' if 'nothing uploaded' in push.stderr else 'UPLOADED'})",
        ),
        ("no-change redeploy with --builder image", f"{second_s:.1f} s"),
        ("  nix builds / skopeo copies (target 0 / 0)", f"{builds} / {log.count('skopeo copy')}"),
        ("  flyctl deploys (target 0)", str(second.count("deploy"))),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_list(Path(tmp))
        rows += bench_deploys(Path(tmp) / "deploys")
        rows += bench_image(Path(tmp) / "image")
    print("| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
