"""nixfly.git: the few questions nixfly asks git, against a real repository."""

from __future__ import annotations

import subprocess

from helpers.project import GIT_ENV

from nixfly import git
from nixfly.errors import NixflyError
from nixfly.runner import Runner


def make_repo(root):
    env = {**GIT_ENV, "PATH": "/usr/bin:/bin", "HOME": str(root)}
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=env)
    (root / ".gitignore").write_text(".env.fly\n")
    (root / "tracked.txt").write_text("x")
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-q", "-m", "one"], check=True, env=env)
    (root / "untracked.txt").write_text("y")
    (root / ".env.fly").write_text("z")


def test_questions_in_a_repository(tmp_path):
    make_repo(tmp_path)
    runner = Runner(cwd=tmp_path)
    assert git.is_repo(runner, tmp_path)
    assert len(git.revision(runner, tmp_path)) >= 7
    assert git.is_tracked(runner, tmp_path, "tracked.txt") and not git.is_tracked(
        runner, tmp_path, "untracked.txt"
    )
    assert git.is_ignored(runner, tmp_path, ".env.fly") and not git.is_ignored(
        runner, tmp_path, "tracked.txt"
    )
    assert git.visible_files(runner, tmp_path) == [".gitignore", "tracked.txt", "untracked.txt"]


def test_outside_a_repository(tmp_path):
    runner = Runner(cwd=tmp_path)
    assert not git.is_repo(runner, tmp_path)
    assert git.revision(runner, tmp_path) == ""
    assert git.visible_files(runner, tmp_path) is None


def test_asking_git_is_a_read_even_in_a_dry_run(tmp_path):
    make_repo(tmp_path)
    assert git.is_repo(Runner(dry_run=True, cwd=tmp_path), tmp_path)


def test_a_dirty_tree_is_told_apart(tmp_path):
    make_repo(tmp_path)  # leaves untracked.txt: dirty
    assert git.is_dirty(Runner(), tmp_path)
    (tmp_path / "untracked.txt").unlink()
    assert not git.is_dirty(Runner(), tmp_path)
    (tmp_path / "tracked.txt").write_text("changed")
    assert git.is_dirty(Runner(), tmp_path)


def test_secrets_files_at_any_depth_but_not_templates():
    for rel in (".env", ".env.fly", ".env.production", "web/.env", "ai-server/.env.local", ".nixfly/x.json"):
        assert git.is_secret_file(rel), rel
    for rel in (".env.example", "web/.env.example", "env", ".envrc", "docs/.env.md/x", "nixfly/.nixfly"):
        assert not git.is_secret_file(rel), rel


def test_a_force_added_env_is_refused_with_the_fix(tmp_path):
    make_repo(tmp_path)
    runner = Runner(cwd=tmp_path)
    git.refuse_tracked_secrets(runner, tmp_path)  # .env.fly exists, but git does not track it
    env = {**GIT_ENV, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run(["git", "-C", str(tmp_path), "add", "-f", ".env.fly"], check=True, env=env)
    assert git.tracked_secrets(runner, tmp_path) == [".env.fly"]
    try:
        git.refuse_tracked_secrets(runner, tmp_path)
    except NixflyError as exc:
        assert "git tracks secrets files: .env.fly" in exc.message
        assert "git rm --cached .env.fly" in (exc.hint or "")
    else:
        raise AssertionError("a tracked .env.fly was not refused")
