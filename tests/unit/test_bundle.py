"""Gathering credentials into .env.fly: sources, validation, git safety, atomic 0600 writes."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from nixfly import bundle, envfiles
from nixfly.errors import NixflyError
from nixfly.runner import Runner


@pytest.fixture
def repo(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(".env\n.env.fly\n")
    return tmp_path


def test_gathers_from_env_and_dotenv_with_env_winning(repo):
    (repo / ".env").write_text("CLAUDE_ACCESS_TOKEN=from-dotenv\nGH_TOKEN='gh-$HOME-${X}'\n")
    creds = repo / "google.json"
    creds.write_text(json.dumps({"type": "service_account", "key": "a\nb"}, indent=4))
    environ = {"CLAUDE_ACCESS_TOKEN": "from-env", "GOOGLE_APPLICATION_CREDENTIALS": str(creds)}
    found = bundle.gather(repo, repo / ".env", Runner(), environ)
    assert found.values["CLAUDE_ACCESS_TOKEN"] == "from-env"
    assert found.sources["CLAUDE_ACCESS_TOKEN"] == "environment"
    # No interpolation: credentials with dollars survive.
    assert found.values["GH_TOKEN"] == "gh-$HOME-${X}"
    compact = found.values["GOOGLE_APPLICATION_CREDENTIALS_JSON"]
    assert "\n" not in compact and json.loads(compact)["key"] == "a\nb"
    assert creds in found.inputs


def test_missing_credential_file_is_a_clear_error(repo):
    with pytest.raises(NixflyError, match=r"GOOGLE_APPLICATION_CREDENTIALS names .* which does not exist"):
        bundle.gather(repo, repo / ".env", Runner(), {"GOOGLE_APPLICATION_CREDENTIALS": "nope.json"})


def test_invalid_json_credential_names_position_not_content(repo):
    (repo / "cursor.json").write_text('{"token": "very-secret-cursor", }')
    with pytest.raises(NixflyError) as info:
        bundle.gather(repo, repo / ".env", Runner(), {"CURSOR_AUTH_FILE": "cursor.json"})
    assert "not valid JSON" in str(info.value) and "very-secret-cursor" not in str(info.value)


def test_malformed_dotenv_names_the_line(repo):
    (repo / ".env").write_text("GOOD=1\nthis line is not an assignment\n")
    with pytest.raises(NixflyError, match=r"\.env: line 2"):
        bundle.gather(repo, repo / ".env", Runner(), {})


def test_refuses_tracked_or_unignored_env_fly(repo):
    (repo / ".gitignore").write_text("")
    with pytest.raises(NixflyError, match="not ignored"):
        bundle.check_ignored(repo, repo / ".env.fly", Runner())
    (repo / ".env.fly").write_text("X=1\n")
    subprocess.run(["git", "-C", str(repo), "add", "-f", ".env.fly"], check=True)
    with pytest.raises(NixflyError, match="tracked by git"):
        bundle.check_ignored(repo, repo / ".env.fly", Runner())


def test_write_is_0600_round_trips_and_is_idempotent(repo):
    values = {"CLAUDE_ACCESS_TOKEN": "tok'en\\with\"quotes", "CURSOR_AUTH_JSON": '{"a":"# not a comment"}'}
    found = bundle.Bundle(values=values)
    target = repo / ".env.fly"
    assert bundle.write(target, found, dry_run=False) is True
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert envfiles.read(target) == values
    assert bundle.write(target, found, dry_run=False) is False


def test_dry_run_writes_nothing(repo):
    assert bundle.write(repo / ".env.fly", bundle.Bundle(values={"A": "b"}), dry_run=True) is True
    assert not (repo / ".env.fly").exists()


def test_stale_when_a_source_is_newer(repo):
    env_fly, dotenv = repo / ".env.fly", repo / ".env"
    assert "missing" in bundle.stale_reason(env_fly, [dotenv])
    dotenv.write_text("A=1\n")
    env_fly.write_text("A='1'\n")
    os.utime(dotenv, (1, 1))
    assert bundle.stale_reason(env_fly, [dotenv]) == ""
    os.utime(dotenv, None)
    os.utime(env_fly, (1, 1))
    assert ".env is newer" in bundle.stale_reason(env_fly, [dotenv])
