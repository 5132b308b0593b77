"""``--target local`` with real Nix: profile generations, a detached process, health-gated cutover, rollback.

Two kinds of closures: tiny ones built here from a flake of builtins.derivation (a Python HTTP server whose
/health answers 200 or 500), so most cases take a second; and the repository's real ``oneshot-integrated``
(web + ai-server under start-oneshot), deployed end to end through the pipeline. Ports are random and free,
readiness is polled, and every process a test started is stopped afterwards, even when the test failed.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from helpers import procs
from helpers.project import REPO
from helpers.sshd import (
    FLY_TOML,
    deploy_host,
    free_port,
    host_says,
    host_status,
    kill_session,
    nix_build,
    on_target,
    session_pids,
    stop_on,
    tiny_flake,
)

from nixfly import commands, config, engine, flytoml
from nixfly.errors import NixflyError
from nixfly.hosts import environment, profile
from nixfly.runner import here
from nixfly.target import Options

pytestmark = [pytest.mark.nix, pytest.mark.slow]

SECRET = "canary-local-target-5e1d7b"
HEALTH = {"timeout": 4, "interval": 0.1, "max_interval": 0.5, "http_timeout": 2}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """version → store path of the tiny app (v1 healthy, v2 answering 500 on /health, v3 healthy)."""
    flake = tiny_flake(tmp_path_factory.mktemp("tiny-flake"), "local")
    paths = nix_build(f"path:{flake}", ["v1", "v2", "v3"], flake / "result")
    return dict(zip(["v1", "v2", "v3"], paths, strict=True))


@pytest.fixture
def make_settings(tmp_path: Path) -> Iterator[Callable[..., config.Settings]]:
    """make_settings(name) → Settings of a fresh project dir; everything started there is stopped after."""
    made: list[config.Settings] = []

    def make(name: str = "project", fly_toml: str = FLY_TOML, port: int = 0) -> config.Settings:
        root = tmp_path / name
        root.mkdir()
        (root / "fly-integrated.toml").write_text(fly_toml.replace("{port}", str(port or free_port())))
        (root / ".env.fly").write_text(f"CLAUDE_ACCESS_TOKEN='{SECRET}'\n")
        settings = config.resolve({"health": HEALTH}, root, mode="integrated")
        made.append(settings)
        return settings

    yield make
    for settings in made:
        pidfile = settings.state_dir.resolve() / "local" / "run" / f"{settings.app}.pid"
        try:
            stop_on(settings, "local")
        finally:
            kill_session(pidfile)


def get(settings: config.Settings, path: str = "/") -> str:
    port = json.loads(record_file(settings).read_text())["live"]["port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read().decode()


def record_file(settings: config.Settings) -> Path:
    return settings.state_dir / "local" / settings.app / "releases.json"


def pid_of(settings: config.Settings) -> int:
    pidfile = settings.state_dir / "local" / "run" / f"{settings.app}.pid"
    return int(pidfile.read_text().split()[0]) if pidfile.exists() else 0


def generations(settings: config.Settings) -> list[str]:
    return sorted(p.name for p in (settings.state_dir / "local" / settings.app).glob("profile-*-link"))


def deploy(settings: config.Settings, store_path: str, **kw: Any):
    return deploy_host(settings, "local", store_path, **kw)


def test_environment_from_the_fly_toml(tmp_path):
    path = tmp_path / "fly.toml"
    path.write_text(FLY_TOML.replace("{port}", "4000").replace('GREETING = "hello"', 'LOG = "/data/x/y.log"'))
    cfg = flytoml.load(path)
    env = environment.compose(
        cfg, {"TOKEN": "s3cret"}, volumes=PurePosixPath("/st/volumes"), port=5001, overrides={"EXTRA": "1"}
    )
    assert env.public == {
        "DATA_DIR": "/st/volumes/oneshot_data",
        "LOG": "/st/volumes/oneshot_data/x/y.log",
        "PORT": "5001",
        "WEB_PORT": "5001",
        "EXTRA": "1",
    }
    assert "export TOKEN=s3cret\n" in env.exports() and "s3cret" not in str(env.public)
    assert environment.kill_timeout(cfg) == 3
    assert environment.http_port(cfg) == 4000 and environment.http_port(cfg, 7) == 7
    listed = "   1   2024-05-01 12:00:00   \n   2   2024-05-02 08:00:00   (current)\n"  # nix-env 2.8
    assert profile.parse_generations(listed) == [
        profile.Generation(1, "2024-05-01 12:00:00", False),
        profile.Generation(2, "2024-05-02 08:00:00", True),
    ]


def test_deploy_runs_the_release_with_env_secrets_and_volume_then_is_idempotent(make_settings, tiny, capfd):
    s = make_settings()
    outcome = deploy(s, tiny["v1"])
    assert outcome.status == "done", outcome
    volume = s.state_dir.resolve() / "local" / "volumes" / "oneshot_data"
    assert get(s) == f"v1 {volume}\n"  # DATA_DIR=/data became the volume's directory
    assert (volume / "started").read_text() == "v1\n"
    pid = pid_of(s)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"CLAUDE_ACCESS_TOKEN={SECRET}".encode() in environ and b"GREETING=hello" in environ
    assert SECRET.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert not any(e.startswith(b"NIXFLY_NIX_OPTIONS=") for e in environ)  # the deployer's env stays out

    # The receipt, beside the generation it describes.
    kept = json.loads((s.state_dir / "local" / s.app / "profile-1-receipt.json").read_text())
    assert (kept["target"], kept["release"], kept["closure"]) == ("local", 1, tiny["v1"])
    assert kept["smoke"] == {
        "store_path": tiny["v1"],
        "result": "skipped (--skip-smoke)",
        "tests": kept["smoke"]["tests"],
    }
    assert kept["sbom_digest"].startswith("sha256:") and SECRET not in json.dumps(kept)

    again = deploy(s, tiny["v1"])
    assert again.status == "skipped" and "already live" in again.detail
    # The plan's diff against the live generation: the same closure changes nothing.
    dry = replace(s, dry_run=True)
    plan = engine.deploy(dry, here(dry), "local", Options(skip_build=True, skip_smoke=True))
    (diff,) = [r for r in plan.records if r.step == "diff"]
    assert (diff.status, diff.detail) == ("planned", "Nothing changes against generation 1")
    assert pid_of(s) == pid and generations(s) == ["profile-1-link"]
    forced = deploy(s, tiny["v1"], force=True)
    assert forced.status == "done" and pid_of(s) != pid and generations(s) == ["profile-1-link"]
    assert SECRET not in capfd.readouterr().err


def test_after_a_reboot_the_same_deploy_starts_the_live_release_again(make_settings, tiny):
    """A release is a process nixfly started, not a system service: a reboot (here: its whole session
    killed, its pidfile left behind) ends it, and running the same deploy again starts it, with nothing
    new to build or copy and no new generation."""
    s = make_settings()
    deploy(s, tiny["v1"])
    pid = pid_of(s)
    kill_session(s.state_dir / "local" / "run" / f"{s.app}.pid")
    procs.wait_until(lambda: not procs.running(pid), 5, "the release to be gone")

    again = deploy(s, tiny["v1"])
    assert again.status == "done", again
    assert pid_of(s) not in (0, pid) and get(s).startswith("v1 ")
    assert generations(s) == ["profile-1-link"]


def test_unhealthy_release_is_rolled_back_and_the_deploy_fails(make_settings, tiny, capsys):
    s = make_settings()
    deploy(s, tiny["v1"])
    with pytest.raises(NixflyError) as failure:
        deploy(s, tiny["v2"])
    message = str(failure.value)
    assert "not healthy after 4s" in message and "→ 500" in message
    assert f"restored the previous release, generation 1 ({tiny['v1']})" in message
    assert get(s).startswith("v1 ")
    assert generations(s) == ["profile-1-link", "profile-2-link"]
    assert os.readlink(s.state_dir / "local" / "oneshot" / "profile") == "profile-1-link"
    live = json.loads(record_file(s).read_text())
    assert live["live"]["generation"] == 1 and [h["healthy"] for h in live["history"]] == [True, False, True]
    assert SECRET not in record_file(s).read_text()

    shown = host_status(s, "local", capsys)
    assert shown["pid"] == pid_of(s) and shown["health"] is not None and shown["health"]["healthy"]
    assert [(g["generation"], g["current"], g["healthy"]) for g in shown["generations"]] == [
        (1, True, True),
        (2, False, False),
    ]
    logs = on_target(s, "local", lambda chosen: chosen.logs(lines=50, timeout=5))
    assert "v1 listening on" in logs and "token ***" in logs and SECRET not in logs


def test_first_deploy_unhealthy_stops_with_nothing_to_roll_back_to(make_settings, tiny, tmp_path):
    s = make_settings()
    with pytest.raises(NixflyError, match="first deploy of oneshot on local: nothing to roll back to"):
        deploy(s, tiny["v2"])
    assert pid_of(s) == 0
    # Judged from /proc, not from nixfly's records: no process runs in (or names) this test's directory.
    # (The release runs in its volume directory, under tmp_path.)
    try:
        procs.wait_until(lambda: not procs.under(tmp_path), 5, "the release's processes to end")
    except AssertionError:
        raise AssertionError(f"left running: {procs.under(tmp_path)}") from None


def test_a_deploy_holding_the_hosts_lock_keeps_others_off_it(make_settings, tiny):
    """Another checkout (or machine) deploying to this host holds its lock: nothing here changes it."""
    s = make_settings()
    deploy(s, tiny["v1"])
    lock_dir = s.state_dir / "local" / "oneshot" / "deploy.lock"
    lock_dir.mkdir()
    holder = {
        "who": "ci",
        "host": os.uname().nodename,
        "pid": os.getppid(),
        "since": "t0",
        "command": "deploy",
    }
    (lock_dir / "holder.json").write_text(json.dumps(holder))
    with pytest.raises(NixflyError, match="another deploy holds the lock of oneshot on local: ci@"):
        deploy(s, tiny["v3"])
    with pytest.raises(NixflyError, match="another deploy holds the lock of oneshot on local"):
        stop_on(s, "local")
    assert generations(s) == ["profile-1-link"] and get(s).startswith("v1 ")
    (lock_dir / "holder.json").unlink()
    lock_dir.rmdir()
    deploy(s, tiny["v3"])
    assert get(s).startswith("v3 ") and not lock_dir.exists()


def test_rollback_switches_generation_and_stop_leaves_no_process(make_settings, tiny, capsys):
    s = make_settings()
    deploy(s, tiny["v1"])
    deploy(s, tiny["v3"])
    assert get(s).startswith("v3 ")
    said = host_says(lambda: commands.rollback(s, to=0, target="local"), capsys)
    assert "generation 1 live on local" in said
    assert get(s).startswith("v1 ")
    commands.rollback(s, to=2, target="local")
    assert get(s).startswith("v3 ")
    with pytest.raises(NixflyError, match="has no generation 7"):
        commands.rollback(s, to=7, target="local")

    pid = pid_of(s)
    assert session_pids(pid)
    assert "stopped" in stop_on(s, "local")
    assert session_pids(pid) == [] and pid_of(s) == 0
    assert "not running" in stop_on(s, "local")


def test_port_override_and_dry_run(make_settings, tiny, capfd):
    s = make_settings()
    port = free_port()
    deploy(s, tiny["v1"], port=port)
    assert json.loads(record_file(s).read_text())["live"]["port"] == port
    assert json.loads(get(s, "/health"))["version"] == "v1"
    dry = replace(s, dry_run=True)
    before = generations(s)
    outcome = deploy(dry, tiny["v3"])
    assert outcome.status == "planned"
    err = capfd.readouterr().err
    assert "[dry-run] would run: nix-env --profile" in err and "[dry-run] would start" in err
    assert generations(s) == before and get(s).startswith("v1 ")


@pytest.fixture(scope="module")
def oneshot(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The repository's real closure, built by real Nix against the offline nixpkgs shim."""
    out = tmp_path_factory.mktemp("oneshot") / "result"
    return nix_build(str(REPO), ["oneshot-integrated"], out)[0]


def test_real_closure_through_the_pipeline_with_rollback(make_settings, oneshot, capfd):
    """The real fly-integrated.toml; v2 is the same closure with AI_PROVIDER=bogus, which the ai-server
    refuses (exit 2), so start-oneshot exits: the deploy fails and v1 answers again."""
    fly_toml = (REPO / "fly-integrated.toml").read_text()
    s = make_settings("oneshot", fly_toml=fly_toml)
    (s.root / ".env").write_text(f"CLAUDE_ACCESS_TOKEN={SECRET}\n")
    s = replace(s, health=replace(s.health, timeout=60))
    web_port, ai_port = free_port(), free_port()
    ports = {"AI_SERVER_PORT": str(ai_port), "AI_SERVER_URL": f"http://127.0.0.1:{ai_port}"}

    deploy_host(s, "local", oneshot, port=web_port, env=ports)
    health = json.loads(get(s, "/health"))
    release = json.loads(record_file(s).read_text())["live"]["release_id"]
    assert health == {"ai_server": "reachable", "status": "ok", "service": "web", "release": release}
    # The toml says claude (Fly); a host runs echo, the mode's host_env.
    assert json.loads(record_file(s).read_text())["live"]["env"]["AI_PROVIDER"] == "echo"
    volume = s.state_dir.resolve() / "local" / "volumes" / "oneshot_data"
    assert volume.is_dir()

    with pytest.raises(NixflyError) as failure:
        deploy_host(s, "local", oneshot, port=web_port, env={**ports, "AI_PROVIDER": "bogus"})
    message = str(failure.value)
    assert "exited during the health check" in message
    assert "restored the previous release, generation 1" in message
    assert json.loads(get(s, "/health"))["status"] == "ok"
    err = capfd.readouterr().err
    assert "invalid AI_PROVIDER" in err  # the log tail shown for the failed release
    assert "rollback" in err and SECRET not in err
