"""Gathering credentials into .env.fly: sources, validation, content-based refresh, git and symlink safety,
atomic 0600 writes, and errors that name files, never values."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from nixfly import bundle, envfiles
from nixfly.errors import NixflyError
from nixfly.runner import Runner

TOKEN = "claude-token-0001"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(".env\n.env.fly\n")
    return tmp_path


def refresh(repo: Path, environ: dict[str, str] | None = None, *, dry_run: bool = False) -> bundle.Refresh:
    return bundle.refresh(
        repo, repo / ".env", repo / ".env.fly", Runner(), dry_run=dry_run, environ=environ or {}
    )


# --- gather ---------------------------------------------------------------------------------------------


def test_gathers_from_env_and_dotenv_with_env_winning(repo: Path) -> None:
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


def test_missing_credential_file_is_a_clear_error(repo: Path) -> None:
    with pytest.raises(NixflyError, match=r"GOOGLE_APPLICATION_CREDENTIALS names .* which does not exist"):
        bundle.gather(repo, repo / ".env", Runner(), {"GOOGLE_APPLICATION_CREDENTIALS": "nope.json"})


def test_invalid_json_credential_names_position_not_content(repo: Path) -> None:
    (repo / "cursor.json").write_text('{"token": "very-secret-cursor", }')
    with pytest.raises(NixflyError) as info:
        bundle.gather(repo, repo / ".env", Runner(), {"CURSOR_AUTH_FILE": "cursor.json"})
    assert "not valid JSON" in str(info.value) and "very-secret-cursor" not in str(info.value)


@pytest.mark.parametrize("variable", ["GOOGLE_APPLICATION_CREDENTIALS", "CURSOR_AUTH_FILE"])
def test_directory_or_non_utf8_credential_file_is_one_clear_line(repo: Path, variable: str) -> None:
    (repo / "creds").mkdir()
    with pytest.raises(NixflyError) as info:
        bundle.gather(repo, repo / ".env", Runner(), {variable: "creds"})
    assert "creds is a directory, not a file" in str(info.value) and variable in str(info.value)
    (repo / "latin1.json").write_bytes(b'{"k": "very-secret-caf\xe9"}')
    with pytest.raises(NixflyError) as info:
        bundle.gather(repo, repo / ".env", Runner(), {variable: "latin1.json"})
    assert "latin1.json is not UTF-8 text" in str(info.value) and "very-secret" not in str(info.value)


def test_unreadable_credential_file_is_one_clear_line(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = repo / "google.json"
    creds.write_text("{}")
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "google.json":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(NixflyError, match=r"google\.json is not readable \(permission denied\)"):
        bundle.gather(repo, repo / ".env", Runner(), {"GOOGLE_APPLICATION_CREDENTIALS": str(creds)})


def test_dotenv_that_is_a_directory_is_one_clear_line(repo: Path) -> None:
    (repo / ".env").mkdir()
    with pytest.raises(NixflyError, match=r"\.env is a directory"):
        bundle.gather(repo, repo / ".env", Runner(), {})


def test_malformed_dotenv_names_the_line(repo: Path) -> None:
    (repo / ".env").write_text("GOOD=1\nthis line is not an assignment\n")
    with pytest.raises(NixflyError, match=r"\.env: line 2"):
        bundle.gather(repo, repo / ".env", Runner(), {})


def test_carriage_returns_are_refused_by_name_from_every_source(repo: Path) -> None:
    (repo / ".env").write_bytes(b"CLAUDE_ACCESS_TOKEN='tok-secret-1\r\nline2'\n")
    with pytest.raises(NixflyError, match="CLAUDE_ACCESS_TOKEN holds a carriage return") as info:
        bundle.gather(repo, repo / ".env", Runner(), {})
    assert "tok-secret-1" not in str(info.value)
    (repo / ".env").write_bytes(b"CLAUDE_ACCESS_TOKEN=fine\r\n")  # CRLF line endings are fine
    assert bundle.gather(repo, repo / ".env", Runner(), {}).values["CLAUDE_ACCESS_TOKEN"] == "fine"
    with pytest.raises(NixflyError, match="GH_TOKEN from environment holds a carriage return") as info:
        bundle.gather(repo, repo / ".env", Runner(), {"GH_TOKEN": "gh-secret-2\r"})
    assert "gh-secret-2" not in str(info.value)


def test_undecodable_environment_value_is_refused_by_name(repo: Path) -> None:
    with pytest.raises(NixflyError, match="GH_TOKEN from environment is not valid UTF-8"):
        bundle.gather(repo, repo / ".env", Runner(), {"GH_TOKEN": "gh-\udcff"})


# --- check_ignored --------------------------------------------------------------------------------------


def test_refuses_tracked_or_unignored_env_fly(repo: Path) -> None:
    (repo / ".gitignore").write_text("")
    with pytest.raises(NixflyError, match="not ignored"):
        bundle.check_ignored(repo, repo / ".env.fly", Runner())
    (repo / ".env.fly").write_text("X=1\n")
    subprocess.run(["git", "-C", str(repo), "add", "-f", ".env.fly"], check=True)
    with pytest.raises(NixflyError, match="tracked by git"):
        bundle.check_ignored(repo, repo / ".env.fly", Runner())


# --- refresh ---------------------------------------------------------------------------------------------


def test_refresh_writes_0600_round_trips_and_is_idempotent(repo: Path) -> None:
    (repo / ".env").write_text(f"CLAUDE_ACCESS_TOKEN={TOKEN}\n")
    first = refresh(repo, {"GH_TOKEN": "tok'en\\with\"quotes # hash"})
    assert first.changed and first.reason == ".env.fly is missing"
    env_fly = repo / ".env.fly"
    assert stat.S_IMODE(env_fly.stat().st_mode) == 0o600
    expected = {"CLAUDE_ACCESS_TOKEN": TOKEN, "GH_TOKEN": "tok'en\\with\"quotes # hash"}
    assert envfiles.read(env_fly) == first.values == expected
    assert first.sources == {"CLAUDE_ACCESS_TOKEN": ".env", "GH_TOKEN": "environment"}
    before = env_fly.stat().st_mtime_ns
    again = refresh(repo, {"GH_TOKEN": "tok'en\\with\"quotes # hash"})
    assert (again.changed, again.reason, again.kept, again.warnings) == (False, "", (), ())
    assert env_fly.stat().st_mtime_ns == before  # not rewritten


def test_a_token_rotated_in_the_environment_wins_over_a_fresher_env_fly(repo: Path) -> None:
    (repo / ".env").write_text(f"CLAUDE_ACCESS_TOKEN={TOKEN}\n")
    refresh(repo)
    future = time.time() + 3600  # .env.fly newer than every file: mtimes would say "nothing changed"
    os.utime(repo / ".env.fly", (future, future))
    rotated = refresh(repo, {"CLAUDE_ACCESS_TOKEN": "claude-token-0002"})
    assert rotated.changed and rotated.reason == "CLAUDE_ACCESS_TOKEN changed"
    assert envfiles.read(repo / ".env.fly")["CLAUDE_ACCESS_TOKEN"] == "claude-token-0002"
    added = refresh(repo, {"CLAUDE_ACCESS_TOKEN": "claude-token-0002", "GH_TOKEN": "gh-new"})
    assert added.reason == "GH_TOKEN added"


def test_keys_no_source_has_now_are_kept_with_a_warning(repo: Path) -> None:
    (repo / ".env").write_text(f"CLAUDE_ACCESS_TOKEN={TOKEN}\n")
    refresh(repo, {"GH_TOKEN": "gh-from-a-shell-long-gone"})
    later = refresh(repo)  # GH_TOKEN is in no source now
    assert later.kept == ("GH_TOKEN",) and not later.changed
    assert later.values["GH_TOKEN"] == "gh-from-a-shell-long-gone"
    assert later.sources["GH_TOKEN"] == "previous .env.fly"
    assert later.warnings == ("kept GH_TOKEN from the previous .env.fly: no source has them now",)


def test_dry_run_writes_nothing(repo: Path) -> None:
    result = refresh(repo, {"CLAUDE_ACCESS_TOKEN": TOKEN}, dry_run=True)
    assert result.changed and result.values == {"CLAUDE_ACCESS_TOKEN": TOKEN}
    assert not (repo / ".env.fly").exists()


def test_mode_drift_is_repaired_without_a_rewrite(repo: Path) -> None:
    refresh(repo, {"CLAUDE_ACCESS_TOKEN": TOKEN})
    (repo / ".env.fly").chmod(0o644)
    assert not refresh(repo, {"CLAUDE_ACCESS_TOKEN": TOKEN}).changed
    assert stat.S_IMODE((repo / ".env.fly").stat().st_mode) == 0o600


def test_a_symlinked_env_fly_is_neither_read_nor_written(repo: Path, tmp_path_factory) -> None:
    other = tmp_path_factory.mktemp("other-project") / ".env"
    other.write_text("THEIR_SECRET=their-value-1\n")
    (repo / ".env.fly").symlink_to(other)
    with pytest.raises(NixflyError, match=r"\.env\.fly is a symlink") as info:
        refresh(repo, {"CLAUDE_ACCESS_TOKEN": TOKEN})
    assert "their-value-1" not in str(info.value)
    assert other.read_text() == "THEIR_SECRET=their-value-1\n" and (repo / ".env.fly").is_symlink()
    (repo / ".env.fly").unlink()
    (repo / ".env.fly").symlink_to(repo / "dangling")
    with pytest.raises(NixflyError, match="is a symlink"):
        refresh(repo, {"CLAUDE_ACCESS_TOKEN": TOKEN})


def test_an_env_fly_that_is_a_directory_is_refused(repo: Path) -> None:
    (repo / ".env.fly").mkdir()
    with pytest.raises(NixflyError, match=r"\.env\.fly is not a regular file"):
        refresh(repo, {"CLAUDE_ACCESS_TOKEN": TOKEN})


def test_a_tracked_env_fly_is_refused_even_when_it_is_up_to_date(repo: Path) -> None:
    refresh(repo, {"CLAUDE_ACCESS_TOKEN": TOKEN})
    subprocess.run(["git", "-C", str(repo), "add", "-f", ".env.fly"], check=True)
    with pytest.raises(NixflyError, match="tracked by git"):
        refresh(repo, {"CLAUDE_ACCESS_TOKEN": TOKEN})
    with pytest.raises(NixflyError, match="tracked by git"):
        bundle.read_env_fly(repo, repo / ".env.fly", Runner())


def test_a_failed_refresh_leaves_the_previous_env_fly(repo: Path) -> None:
    refresh(repo, {"CLAUDE_ACCESS_TOKEN": TOKEN})
    before = (repo / ".env.fly").read_text()
    (repo / ".env").write_text("broken line\n")
    with pytest.raises(NixflyError, match="line 1"):
        refresh(repo, {"CLAUDE_ACCESS_TOKEN": "claude-token-0003"})
    assert (repo / ".env.fly").read_text() == before


def test_outside_git_it_warns(tmp_path: Path) -> None:
    result = bundle.refresh(
        tmp_path, tmp_path / ".env", tmp_path / ".env.fly", Runner(), dry_run=True, environ={"GH_TOKEN": "x"}
    )
    assert result.warnings == (f"{tmp_path} is not a git checkout: make sure .env.fly is never committed",)
    assert result.missing(("CLAUDE_ACCESS_TOKEN", "GH_TOKEN")) == ["CLAUDE_ACCESS_TOKEN"]
