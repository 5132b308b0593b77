"""nixfly.hosts.environment: the fly toml's environment for a machine that is not a Fly Machine."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import PurePosixPath

import pytest
from helpers.fakes import checkout, settings

from nixfly import flytoml
from nixfly.errors import NixflyError
from nixfly.flysecrets import Fingerprints
from nixfly.hosts import environment
from nixfly.hosts.environment import Environment

VOLUMES = PurePosixPath("/state/volumes")


@pytest.fixture
def cfg(tmp_path):
    return flytoml.load(checkout(tmp_path) / "fly-integrated.toml")


def toml(tmp_path, body: str):
    path = tmp_path / "fly.toml"
    path.write_text(f'app = "x"\n{body}')
    return flytoml.load(path)


def test_compose_rewrites_mounts_sets_the_port_and_keeps_secrets_apart(cfg):
    env = environment.compose(
        cfg, {"CLAUDE_ACCESS_TOKEN": "t0ken"}, volumes=VOLUMES, port=4100, overrides={"AI_PROVIDER": "echo"}
    )
    assert env.public["DATA_DIR"] == "/state/volumes/oneshot_data"
    assert (env.public["PORT"], env.public["WEB_PORT"], env.public["AI_PROVIDER"]) == ("4100", "4100", "echo")
    assert env.public["AI_SERVER_URL"] == "http://127.0.0.1:3000"
    assert env.secret == {"CLAUDE_ACCESS_TOKEN": "t0ken"} and "CLAUDE_ACCESS_TOKEN" not in env.public


def test_exports_survive_a_shell_and_secrets_win():
    env = Environment(public={"A": "it's $HOME", "TOKEN": "public"}, secret={"TOKEN": "s3cr3t value"})
    out = subprocess.run(
        ["sh", "-c", env.exports() + 'printf "%s|%s" "$A" "$TOKEN"'], capture_output=True, text=True
    )
    assert out.stdout == "it's $HOME|s3cr3t value"
    with pytest.raises(NixflyError, match="invalid variable name"):
        Environment({"A B": "1"}, {}).exports()


def test_the_digest_changes_with_any_value_and_reveals_no_secret(tmp_path):
    prints = Fingerprints(tmp_path, "app")
    one = Environment({"A": "1"}, {"TOKEN": "secret-a"}).digest(prints, create_key=True)
    assert one == Environment({"A": "1"}, {"TOKEN": "secret-a"}).digest(prints, create_key=True)
    assert one != Environment({"A": "2"}, {"TOKEN": "secret-a"}).digest(prints, create_key=True)
    assert one != Environment({"A": "1"}, {"TOKEN": "secret-b"}).digest(prints, create_key=True)
    assert "secret-a" not in shlex.join([one])


def test_http_port(cfg, tmp_path):
    assert environment.http_port(cfg) == 4000 and environment.http_port(cfg, 8080) == 8080
    bare = toml(tmp_path, "")
    with pytest.raises(NixflyError, match="has no \\[http_service\\] internal_port"):
        environment.http_port(bare)
    with pytest.raises(NixflyError, match="port 70000 is out of range"):
        environment.http_port(bare, 70000)


def test_check_paths_from_the_toml_else_the_health_url(cfg, tmp_path):
    s = settings(checkout(tmp_path / "c"), health_url="http://127.0.0.1:1/ready")
    assert environment.check_paths(cfg, s) == ["/health"]
    assert environment.check_paths(toml(tmp_path, ""), s) == ["/ready"]


@pytest.mark.parametrize(
    ("raw", "seconds"), [(None, 5.0), (30, 30.0), ('"10s"', 10.0), ('"1m"', 60.0), ('"500ms"', 0.5)]
)
def test_kill_timeout(tmp_path, raw, seconds):
    cfg = toml(tmp_path, f"kill_timeout = {raw}\n" if raw is not None else "")
    assert environment.kill_timeout(cfg) == seconds


def test_a_kill_timeout_that_is_not_a_duration(tmp_path):
    # The fly toml's loader refuses it first, naming the key (kill_timeout: whole seconds or a Go duration).
    with pytest.raises(NixflyError, match="`kill_timeout` must be a duration"):
        environment.kill_timeout(toml(tmp_path, 'kill_timeout = "soon"\n'))


def test_volume_dirs_and_rewrites(tmp_path):
    cfg = toml(
        tmp_path,
        '[[mounts]]\nsource = "d"\ndestination = "/data/"\n[[mounts]]\nsource = "r"\ndestination = "/"\n',
    )
    mounts = environment.volume_dirs(cfg, VOLUMES)
    assert mounts == {"/data": VOLUMES / "d"}
    assert environment.rewrite_mounts("/data", mounts) == "/state/volumes/d"
    assert environment.rewrite_mounts("/data/x/y", mounts) == "/state/volumes/d/x/y"
    assert environment.rewrite_mounts("/database", mounts) == "/database"
