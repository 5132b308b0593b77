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
