"""``--on user@host`` and ``--target ssh://…`` against a real OpenSSH server on 127.0.0.1.

The "remote" host is this machine reached over SSH as root (sshd from openssh-server, started by the
fixture with its own keys), so nix is there and the store is shared; what is remote is everything nixfly
does: commands through Fabric, the checkout synced over SFTP, state under the SSH session's HOME, closures
moved with ``nix copy`` over Nix's ssh store. Failures (unreachable host, refused key, no nix there) must be
one clear error each; a dry-run must not connect at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.project import GIT_ENV, copy_checkout, require
from helpers.sshd import (
    FLY_TOML,
    Sshd,
    closed_port,
    deploy_host,
    free_port,
    host_status,
    kill_session,
    nix_build,
    on_target,
    running_sshd,
    session_pids,
    stop_on,
    tiny_flake,
    wrong_key_config,
)

from nixfly import config
from nixfly.buildhost import open_build_host
from nixfly.endpoint import parse_endpoint
from nixfly.errors import NixflyError
from nixfly.remote import RemoteRunner
from nixfly.runner import here

pytestmark = [pytest.mark.nix, pytest.mark.slow]

SECRET = "canary-ssh-target-9c4f21"
HEALTH = {"timeout": 4, "interval": 0.1, "max_interval": 0.5, "http_timeout": 2}


@pytest.fixture
def sshd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sshd]:
    """A fresh server per test: its HOME (remote checkouts, target state) starts empty."""
    require("ssh")
    with running_sshd(tmp_path / "sshd") as server:
        monkeypatch.setenv("NIXFLY_SSH_CONFIG", str(server.ssh_config))
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the fixture's key may be offered
        yield server


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    flake = tiny_flake(tmp_path_factory.mktemp("tiny-flake"), "ssh")
    return dict(zip(["v1", "v2"], nix_build(f"path:{flake}", ["v1", "v2"], flake / "result"), strict=True))


@pytest.fixture
def make_settings(tmp_path: Path, sshd: Sshd) -> Iterator[Callable[..., config.Settings]]:
    """make_settings(git=False) → Settings of a fresh project (a git checkout of the tiny flake if git)."""
    made: list[config.Settings] = []

    def make(*, git: bool = False, dry_run: bool = False) -> config.Settings:
        root = tmp_path / f"project{len(made)}"
        root.mkdir()
        (root / "fly-integrated.toml").write_text(FLY_TOML.replace("{port}", str(free_port())))
        (root / ".env.fly").write_text(f"CLAUDE_ACCESS_TOKEN='{SECRET}'\n")
        if git:
            tiny_flake(root, uuid.uuid4().hex[:12])  # a nonce: the build really runs, and prints
            (root / ".gitignore").write_text(".env.fly\n")
            env = {**os.environ, **GIT_ENV}
            subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
            subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
        settings = config.resolve({"health": HEALTH}, root, mode="integrated", dry_run=dry_run)
        made.append(settings)
        return settings

    yield make
    pidfile = sshd.home / ".local" / "state" / "nixfly" / "local" / "run" / "oneshot.pid"
    try:
        for settings in made:
            if not settings.dry_run:
                stop_on(settings, f"ssh://{sshd.endpoint}")
    finally:
        kill_session(pidfile)


def get(port: int, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read().decode()


def remote_state(sshd: Sshd) -> Path:
    return sshd.home / ".local" / "state" / "nixfly" / "local"


def live(sshd: Sshd) -> dict:
    return json.loads((remote_state(sshd) / "oneshot" / "releases.json").read_text())["live"]


def test_on_builds_on_the_host_with_output_prefixed(make_settings, sshd, capfd):
    s = make_settings(git=True)
    with open_build_host(s, here(s), sshd.endpoint) as host:
        built = host.build("v1", "result")
    with open_build_host(s, here(s), sshd.endpoint) as host:  # a second run finds the checkout synced
        again = host.build("v1", "result")
    checkout = built.out_link.parent
    assert checkout.parent == sshd.home / ".cache" / "nixfly" / "checkouts"  # under the SSH session's HOME
    assert checkout.name.startswith(f"{s.root.name}-")
    assert (checkout / "flake.nix").read_text() == (s.root / "flake.nix").read_text()
    assert not (checkout / ".env.fly").exists()  # only what git tracks (what the flake sees) travels
    assert "-nixfly-tiny-v1-" in built.store_path
    assert Path(built.store_path, "bin", "start-oneshot").exists()
    assert again.store_path == built.store_path
    err = capfd.readouterr().err
    prefix = f"[{sshd.endpoint}] "
    assert f"{prefix}$ nix --extra-experimental-features" in err
    assert f"{prefix}building '/nix/store/" in err  # nix's own output, streamed back with the host
    assert f"{prefix}checkout {checkout} is up to date" in err


def test_ssh_target_activates_rolls_back_and_stops(make_settings, sshd, tiny, capfd):
    s = make_settings()
    target = f"ssh://{sshd.endpoint}"
    sshd.forget_store()  # a host without the closure: the deploy copies it
    outcome = deploy_host(s, target, tiny["v1"])
    assert outcome.status == "done", outcome
    release = live(sshd)
    volume = remote_state(sshd) / "volumes" / "oneshot_data"
    assert get(release["port"]) == f"v1 {volume}\n"
    pid = int((remote_state(sshd) / "run" / "oneshot.pid").read_text().split()[0])
    assert SECRET.encode() in Path(f"/proc/{pid}/environ").read_bytes()
    assert SECRET.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    err = capfd.readouterr().err
    assert "$ nix --extra-experimental-features 'nix-command flakes' copy --to ssh://root@127.0.0.1" in err
    assert SECRET not in err

    again = deploy_host(s, target, tiny["v1"])
    assert again.status == "skipped" and "already live on " + sshd.endpoint in again.detail

    with pytest.raises(NixflyError) as failure:
        deploy_host(s, target, tiny["v2"])
    assert "→ 500" in str(failure.value)
    assert f"restored the previous release, generation 1 ({tiny['v1']})" in str(failure.value)
    assert get(release["port"]).startswith("v1 ")

    shown = host_status(s, target, capfd)
    assert shown["pid"] and shown["health"] is not None and shown["health"]["healthy"]
    assert [(g["generation"], g["current"]) for g in shown["generations"]] == [(1, True), (2, False)]
    logs = on_target(s, target, lambda chosen: chosen.logs(lines=20, timeout=5))
    assert "v1 listening on" in logs

    pid = shown["pid"]
    assert "stopped" in stop_on(s, target)
    assert session_pids(pid) == []


def test_on_and_ssh_target_through_the_pipeline(make_settings, sshd):
    """Built on the host, smoke skipped, activated on the same host: nothing to copy."""
    s = make_settings(git=True)
    deploy_host(s, f"ssh://{sshd.endpoint}", on=sshd.endpoint, skip_smoke=True)
    assert get(live(sshd)["port"]).startswith("v1 ")
    assert "/.cache/nixfly/checkouts/" not in live(sshd)["store_path"]


def test_argv_arrives_word_for_word_with_env_cwd_and_stdin(sshd, tmp_path):
    """One command string over SSH, parsed by the remote shell: shlex.join must keep every word intact."""
    remote = RemoteRunner(parse_endpoint(sshd.endpoint))
    tricky = ["a b", "$HOME", "'q'", '"dq"', "`id`", "; touch /tmp/nixfly-pwned", "*", "", "new\nline"]
    try:
        echoed = remote.run(["printf", "%s|", *tricky], mutates=False, quiet=True).stdout
        where = remote.run(
            ["sh", "-c", 'pwd; printf %s "$X"; cat'],
            cwd=tmp_path,
            env={"X": "$HOME x"},
            stdin="from stdin",
            quiet=True,
        ).stdout
    finally:
        remote.close()
    assert echoed == "".join(f"{word}|" for word in tricky)
    assert where == f"{tmp_path}\n$HOME xfrom stdin"
    assert not Path("/tmp/nixfly-pwned").exists()


def test_on_with_the_real_checkout_builds_smokes_and_deploys_there(sshd, tmp_path):
    """The repository itself: synced to the host, oneshot-integrated built and smoke-tested there
    (python3 -m pytest tests/smoke), then run there from the same store: nothing to copy."""
    root = tmp_path / "checkout"
    root.mkdir()
    copy_checkout(root)
    (root / ".env").write_text(f"CLAUDE_ACCESS_TOKEN={SECRET}\n")
    settings = config.resolve({"health": {**HEALTH, "timeout": 60}}, root, mode="integrated")
    web, ai = free_port(), free_port()
    ports = {"AI_SERVER_PORT": str(ai), "AI_SERVER_URL": f"http://127.0.0.1:{ai}"}
    target = f"ssh://{sshd.endpoint}"
    try:
        deploy_host(settings, target, on=sshd.endpoint, port=web, env=ports)
        release = live(sshd)["release_id"]
        assert json.loads(get(web, "/health")) == {
            "ai_server": "reachable",
            "status": "ok",
            "service": "web",
            "release": release,
        }
        assert json.loads((root / ".nixfly" / "smoke-passed.json").read_text()) == [live(sshd)["store_path"]]
    finally:
        stop_on(settings, target)


def test_dry_run_opens_no_connection(make_settings, tiny, capfd):
    s = make_settings(git=True, dry_run=True)
    nowhere = f"root@127.0.0.1:{closed_port()}"
    outcome = deploy_host(s, f"ssh://{nowhere}", tiny["v1"])
    assert outcome.status == "planned"
    with open_build_host(s, here(s), nowhere) as host:
        assert host.build("v1", "result").store_path == ""
    deploy_host(s, f"ssh://{nowhere}", on=nowhere, skip_smoke=True)
    err = capfd.readouterr().err
    assert f"[{nowhere}] [dry-run] would run: nix-env --profile" in err
    assert f"[{nowhere}] [dry-run] would start" in err
    assert f"[{nowhere}] [dry-run] would sync" in err
    assert "[dry-run] would run: nix --extra-experimental-features 'nix-command flakes' copy --to" in err
    assert "cannot reach" not in err


def test_unreachable_host_is_one_clear_error(make_settings, tiny):
    s = make_settings()
    nowhere = f"root@127.0.0.1:{closed_port()}"
    with pytest.raises(NixflyError) as failure, open_build_host(s, here(s), nowhere) as host:
        host.build("oneshot-integrated", "result")
    assert str(failure.value).startswith(f"cannot reach {nowhere} (port ")
    assert "Connection refused" in str(failure.value) and "sshd runs there" in str(failure.value)
    with pytest.raises(NixflyError, match=f"cannot reach {nowhere}"):
        deploy_host(s, f"ssh://{nowhere}", tiny["v1"])


def test_refused_key_is_one_clear_error(make_settings, sshd, tmp_path):
    s = make_settings()
    with pytest.MonkeyPatch.context() as patch, pytest.raises(NixflyError) as failure:
        patch.setenv("NIXFLY_SSH_CONFIG", str(wrong_key_config(sshd, tmp_path)))
        on_target(s, f"ssh://{sshd.endpoint}", lambda chosen: chosen.status(as_json=True))
    assert str(failure.value).startswith(f"{sshd.endpoint} refused authentication as root — check the key")


def test_host_without_nix_is_one_clear_error(make_settings, sshd, tiny):
    s = make_settings(git=True)
    with pytest.raises(NixflyError) as failure, open_build_host(s, here(s), sshd.nonix_endpoint) as host:
        host.build("v1", "result")
    assert str(failure.value).startswith(f"nix not found on {sshd.nonix_endpoint} — install Nix there")
    with pytest.raises(NixflyError, match=f"nix-env not found on {sshd.nonix_endpoint}'s PATH"):
        deploy_host(s, f"ssh://{sshd.nonix_endpoint}", tiny["v1"])


def test_nix_off_the_ssh_path_is_found_where_installers_put_it(make_settings, sshd, tiny, capfd):
    """A host whose SSH commands do not see Nix (its installer added it to login shells only): nixfly
    finds it in ~/.nix-profile/bin, builds and smoke-free deploys there with it, and `nix copy` from here
    runs that host's nix-store by its path (the store URI's remote-program)."""
    s = make_settings(git=True)
    target = f"ssh://{sshd.offpath_endpoint}"
    pidfile = sshd.offpath_home / ".local" / "state" / "nixfly" / "local" / "run" / "oneshot.pid"
    release = sshd.offpath_home / ".local" / "state" / "nixfly" / "local" / "oneshot" / "releases.json"
    try:
        built_there = deploy_host(s, target, on=sshd.offpath_endpoint, skip_smoke=True)
        assert built_there.status == "done", built_there
        first = json.loads(release.read_text())["live"]
        assert get(first["port"]).startswith("v1 ")

        copied = deploy_host(s, target, tiny["v1"])
        assert copied.status == "done", copied
        assert json.loads(release.read_text())["live"]["store_path"] == tiny["v1"]
        err = capfd.readouterr().err
        nix_dir = sshd.offpath_home / ".nix-profile" / "bin"
        said = f"[{sshd.offpath_endpoint}] nix is not on the PATH of SSH commands here; using {nix_dir}"
        assert said in err
        # The host's store (this machine's, shared) holds the closure: the one query that says so ran that
        # host's nix-store by its path (plain `nix-store` is not on its PATH: that would have meant a copy).
        assert "already holds" in err and "copy --to" not in err
    finally:
        try:
            stop_on(s, target)
        finally:
            kill_session(pidfile)


def test_endpoint_validation(make_settings):
    s = make_settings()
    for bad in ("root@-oProxyCommand=x", "root@host:99999", "root@host;rm", "root@host\n"):
        with pytest.raises(NixflyError, match="invalid SSH host"):
            open_build_host(s, here(s), bad)
    with pytest.raises(NixflyError, match="unknown target"):
        on_target(replace(s), "ftp://host", lambda chosen: chosen.status(as_json=False))


def test_a_port_without_sshd_is_one_clean_line(project):
    """A port that answers but is not sshd (here: something HTTP-like that hangs up): one line naming the
    host and port, and nothing from paramiko's transport thread (no traceback, no "Exception (client)")."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                peer, _ = server.accept()
                with peer:
                    peer.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        result = project.inv("status", "--target", f"ssh://root@127.0.0.1:{port}")
    finally:
        server.close()
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"error: 127.0.0.1 port {port} does not answer as an SSH server (no SSH greeting) — check the "
        "port: sshd listens on 22 unless its config says otherwise (ssh://user@host:PORT)"
    ], result.stderr


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren …, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_losing_sshd_during_verify_is_one_line_naming_the_command_not_its_script(tmp_path, sshd, tiny):
    """sshd dies while the unhealthy v2 is being verified: the error is one line naming the command by its
    words (``sh -c <N-line script> nixfly-…``), never the remote script's text; the rollback that cannot
    reach the host says so in the same line."""
    import signal
    import threading
    import time

    root = tmp_path / "project"
    root.mkdir()
    (root / "fly-integrated.toml").write_text(FLY_TOML.replace("{port}", str(free_port())))
    (root / ".env.fly").write_text(f"CLAUDE_ACCESS_TOKEN='{SECRET}'\n")
    slow = {**HEALTH, "timeout": 120}  # verify keeps polling v2 until sshd is gone
    s = config.resolve({"health": slow}, root, mode="integrated")
    target = f"ssh://{sshd.endpoint}"
    pidfile = remote_state(sshd) / "run" / "oneshot.pid"
    failures: list[NixflyError] = []

    def deploy() -> None:
        try:
            deploy_host(s, target, tiny["v2"])
        except NixflyError as exc:
            failures.append(exc)

    worker = threading.Thread(target=deploy)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not pidfile.exists() and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pidfile.exists(), "v2 never started"
        time.sleep(1)  # verify is polling now (v2 answers 500)
        listener = int((tmp_path / "sshd" / "sshd.pid").read_text())
        for pid in [*descendants(listener), listener]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.join(timeout=120)
        assert not worker.is_alive()
    finally:
        kill_session(pidfile)
    assert len(failures) == 1
    line = str(failures[0])
    assert "\n" not in line and len(line) < 1000, line
    assert f"lost the SSH connection to {sshd.endpoint} during `sh -c <" in line
    assert "set -" not in line and "$1" not in line
