"""fly.toml parsing and the sanity checks `inv doctor` and deploy's preflight rely on."""

from __future__ import annotations

import pytest

from nixfly import flytoml
from nixfly.errors import NixflyError

ONE_GROUP = """
app = "oneshot"
primary_region = "iad"
[env]
  AI_SERVER_URL = "http://127.0.0.1:3000"
[[mounts]]
  source = "oneshot_data"
  destination = "/data"
[http_service]
  internal_port = 4000
  [[http_service.checks]]
    method = "GET"
    path = "/health"
"""

TWO_GROUPS = """
app = "oneshot"
primary_region = "iad"
[processes]
  web = "bin/web"
  ai = "bin/ai-server"
[env]
  AI_SERVER_URL = "http://localhost:3000"
[[mounts]]
  source = "oneshot_data"
  destination = "/data"
[http_service]
  internal_port = 4000
  processes = ["web"]
"""


def load(tmp_path, text):
    path = tmp_path / "fly.toml"
    path.write_text(text)
    return flytoml.load(path)


def test_one_group_config_is_clean(tmp_path):
    assert flytoml.problems(load(tmp_path, ONE_GROUP), expected_app="oneshot", volume="oneshot_data") == []


def test_two_groups_sharing_localhost_and_a_volume_are_flagged(tmp_path):
    found = flytoml.problems(load(tmp_path, TWO_GROUPS), expected_app="oneshot", volume="oneshot_data")
    text = " ".join(message for _, message in found)
    assert "separate Machines" in text and "never share a volume" in text
    assert "no checks" in text


def test_missing_volume_mount_and_app_mismatch(tmp_path):
    found = dict(
        (m, lvl) for lvl, m in flytoml.problems(load(tmp_path, ONE_GROUP), expected_app="other", volume="v")
    )
    assert "error" in found.values() and any("nixfly deploys 'other'" in m for m in found)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(NixflyError, match="not found"):
        flytoml.load(tmp_path / "nope.toml")
    with pytest.raises(NixflyError, match="not valid TOML"):
        load(tmp_path, "app = ")


def test_the_loose_forms_flyctl_accepts_are_accepted(tmp_path):
    """internal/appconfig/patches.go: a single [mounts] table, [env] numbers and booleans (Go's %v), the
    old [[processes]] array, kill_timeout as seconds or a Go duration."""
    cfg = load(
        tmp_path,
        """
app = "oneshot"
kill_timeout = "1m30s"
[[processes]]
  name = "app"
  command = "/bin/start-oneshot"
[env]
  PORT = 4000
  DEBUG = true
  RATIO = 0.5
[mounts]
  source = "oneshot_data"
  destination = "/data"
""",
    )
    assert cfg.env == {"PORT": "4000", "DEBUG": "true", "RATIO": "0.5"}
    assert cfg.processes == {"app": "/bin/start-oneshot"}
    assert [m["source"] for m in cfg.mounts] == ["oneshot_data"]
    for duration in ("5", "0", "0.5", '"10s"', '"1h2m"', '"500ms"', '".5s"', '""'):
        load(tmp_path, f"kill_timeout = {duration}\n")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[http_service]\n  internal_port = "4000"\n', "`http_service.internal_port` must be a whole number"),
        ("[http_service]\n  internal_port = 0\n", "`http_service.internal_port` must be from 1 to 65535"),
        ('http_service = "x"\n', "`http_service` must be a table"),
        (
            "[http_service]\n  [http_service.checks]\n    path = '/'\n",
            "`http_service.checks` must be an array",
        ),
        ("[[http_service.checks]]\n  path = 5\n", "`http_service.checks[0].path` must be a string"),
        ("[env]\n  A = [1]\n", "`env.A` must be a string, number or boolean, not an array"),
        ('kill_timeout = "-5s"\n', "`kill_timeout` must be a duration"),
        ("kill_timeout = true\n", "`kill_timeout` must be a duration"),
        ('mounts = "x"\n', "`mounts` must be a table ([mounts]) or an array of tables"),
        ("[[mounts]]\n  source = 1\n", "`mounts[0].source` must be a string"),
        ("[processes]\n  app = 1\n", "`processes.app` must be a string"),
        ("app = 1\n", "`app` must be a string, not a number (1)"),
    ],
)
def test_a_field_of_the_wrong_type_is_one_error_naming_file_and_key(tmp_path, text, key):
    with pytest.raises(NixflyError, match=r"fly config fly\.toml: ") as raised:
        load(tmp_path, text)
    assert key in raised.value.message


def test_files_that_are_not_readable_tomls(tmp_path):
    import os

    path = tmp_path / "fly.toml"
    path.mkdir()
    with pytest.raises(NixflyError, match="is a directory, not a file"):
        flytoml.load(path)
    path.rmdir()
    os.mkfifo(path)
    with pytest.raises(NixflyError, match="is not a regular file"):
        flytoml.load(path)  # refused before it is opened: reading a FIFO would block
    path.unlink()
    path.write_bytes(b'app = "\xff"\n')
    with pytest.raises(NixflyError, match="is not UTF-8 text"):
        flytoml.load(path)
