"""The few things nixfly asks git, through the one runner (all reads)."""

from __future__ import annotations

from pathlib import Path

from nixfly.errors import NixflyError
from nixfly.runner import Runner

# What .gitignore lets through on purpose: a template of the variables, without values.
TEMPLATES = (".env.example",)
STATE_DIR = ".nixfly"


def _ask(runner: Runner, root: Path, *args: str) -> tuple[int, str]:
    result = runner.run(["git", *args], mutates=False, check=False, quiet=True, cwd=root)
    return result.returncode, result.stdout


def is_repo(runner: Runner, root: Path) -> bool:
    return _ask(runner, root, "rev-parse", "--is-inside-work-tree")[0] == 0


def revision(runner: Runner, root: Path) -> str:
    code, out = _ask(runner, root, "rev-parse", "--short", "HEAD")
    return out.strip() if code == 0 else ""


def is_dirty(runner: Runner, root: Path) -> bool:
    """Whether the work tree differs from HEAD (changed or untracked-not-ignored files): a receipt says so,
    since the revision alone then does not name what was built."""
    code, out = _ask(runner, root, "status", "--porcelain", "--untracked-files=normal")
    return code == 0 and bool(out.strip())


def is_tracked(runner: Runner, root: Path, rel: str) -> bool:
    return _ask(runner, root, "ls-files", "--error-unmatch", "--", rel)[0] == 0


def is_ignored(runner: Runner, root: Path, rel: str) -> bool:
    return _ask(runner, root, "check-ignore", "-q", "--", rel)[0] == 0


def visible_files(runner: Runner, root: Path) -> list[str] | None:
    """Files a flake in this checkout can see (tracked, plus untracked-not-ignored); None outside git."""
    code, out = _ask(runner, root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return sorted(set(filter(None, out.split("\0")))) if code == 0 else None


def branch(runner: Runner, root: Path) -> str:
    """The checked-out branch's short name; "" on a detached HEAD (as CI checks a pull request out)."""
    code, out = _ask(runner, root, "symbolic-ref", "--short", "-q", "HEAD")
    return out.strip() if code == 0 else ""


def is_secret_file(rel: str) -> bool:
    """A dotenv secrets file (``.env``, ``.env.fly``, ``.env.<anything>`` but a template) or nixfly's state,
    at any depth: never to be tracked, since Nix copies every tracked file into the world-readable store."""
    parts = rel.split("/")
    name = parts[-1]
    dotenv = name == ".env" or (name.startswith(".env.") and name not in TEMPLATES)
    return dotenv or STATE_DIR in parts[:-1]


def tracked_secrets(runner: Runner, root: Path) -> list[str]:
    """The secrets files git tracks (the index included: ``git add -f .env`` counts before any commit);
    none without git or outside a git checkout."""
    if not runner.which("git"):
        return []
    code, out = _ask(runner, root, "ls-files", "-z", "--cached")
    return [rel for rel in out.split("\0") if rel and is_secret_file(rel)] if code == 0 else []


def refuse_tracked_secrets(runner: Runner, root: Path) -> None:
    """Stop before Nix copies the checkout (with every tracked file) into the world-readable store."""
    found = tracked_secrets(runner, root)
    if found:
        names = " ".join(found)
        raise NixflyError(
            f"git tracks secrets files: {names}; Nix would copy them into the world-readable /nix/store "
            "(and a commit would publish them)",
            f"untrack them (the files stay on disk): `git rm --cached {names}`, then commit; "
            "rotate any secret that was ever committed",
        )
