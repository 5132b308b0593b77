"""Gathering credentials into ``.env.fly`` (replaces ai-server/scripts/bundle-credentials.sh).

Sources, first match wins: the process environment, then the developer's ``.env``. JSON credentials are read
from the files their variables name, validated and compacted to one line. Only names and sources are ever
printed; values stay in memory, in the 0600 file, and on flyctl's stdin.

``refresh`` is the one entry point (``inv bundle`` and the deploy's bundle step): it gathers every source
each time and compares VALUES with what ``.env.fly`` holds, so a token rotated in the environment is picked
up even when ``.env.fly`` is newer than every file. Each time it reads ``.env.fly`` it first refuses a
symlink, and a file git tracks or does not ignore.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nixfly import console, envfiles, git
from nixfly.errors import NixflyError
from nixfly.runner import REDACT, Runner

if TYPE_CHECKING:
    from nixfly.config import Settings

HEADER = "Written by `inv bundle` (nixfly). Holds credentials: never commit it. Mode 0600."
# Names the ai-server reads (ai-server/src/config.ts), in the order they are written.
KEYS = ("CLAUDE_ACCESS_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS_JSON", "CURSOR_AUTH_JSON", "GH_TOKEN")
# (JSON secret, variable naming the file it comes from, default file)
JSON_FILES = (
    ("GOOGLE_APPLICATION_CREDENTIALS_JSON", "GOOGLE_APPLICATION_CREDENTIALS", ""),
    ("CURSOR_AUTH_JSON", "CURSOR_AUTH_FILE", "~/.config/cursor/auth.json"),
)


@dataclass
class Bundle:
    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def missing(self, required: tuple[str, ...]) -> list[str]:
        return [key for key in required if not self.values.get(key)]


@dataclass(frozen=True)
class Refresh:
    """What ``refresh`` found and did. ``values`` is what ``.env.fly`` holds now (or would, in a dry run)."""

    values: dict[str, str]
    sources: dict[str, str]
    changed: bool  # .env.fly was (or would be) rewritten
    reason: str  # why, by key names only; "" when unchanged
    kept: tuple[str, ...] = ()  # keys carried over from the previous .env.fly: no source has them now
    warnings: tuple[str, ...] = ()

    def missing(self, required: tuple[str, ...]) -> list[str]:
        return [key for key in required if not self.values.get(key)]


def _compact_json(text: str, name: str, origin: str) -> str:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg and the position never quote the content.
        raise NixflyError(
            f"{name} from {origin} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            "fix or replace the credential file, then run `inv bundle` again",
        ) from None
    if not isinstance(data, dict):
        # Both credentials are JSON objects; a bare string or list is a file of something else.
        raise NixflyError(
            f"{name} from {origin} is JSON but not an object ({type(data).__name__})",
            "point it at the credential file itself, then run `inv bundle` again",
        )
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _checked(name: str, value: str, origin: str) -> str:
    """A value a secret can carry: UTF-8 text without a carriage return (docs/secrets.md refuses the rest)."""
    if "\r" in value:
        raise NixflyError(
            f"{name} from {origin} holds a carriage return, which a secret cannot carry intact",
            "remove it (often a Windows line ending read from a file into the variable)",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NixflyError(
            f"{name} from {origin} is not valid UTF-8 text (undecodable bytes, or a lone surrogate escape)",
            f"fix {name} at its source, then run `inv bundle` again",
        ) from None
    return value


def gather(root: Path, dotenv: Path, runner: Runner, environ: Mapping[str, str] | None = None) -> Bundle:
    """Collect every known credential; raise ``NixflyError`` on a bad source, leaving nothing written."""
    environ = os.environ if environ is None else environ
    # lexists: a .env that is a dangling symlink is an error to show, not a file to skip.
    file_values = envfiles.read(dotenv) if os.path.lexists(dotenv) else {}
    bundle = Bundle()

    def lookup(name: str) -> tuple[str, str] | None:
        if environ.get(name):
            return environ[name], "environment"
        if file_values.get(name):
            return file_values[name], dotenv.name
        return None

    for name, file_var, default in JSON_FILES:
        pointer = lookup(file_var)
        path = Path(os.path.expanduser(pointer[0] if pointer else default)) if (pointer or default) else None
        if path is not None and not path.is_absolute():
            path = root / path
        if pointer and path is not None and not os.path.lexists(path):
            raise NixflyError(
                f"{file_var} names {path}, which does not exist",
                f"point {file_var} at the credential file or unset it",
            )
        # os.path.exists, not Path.exists: a default path behind an unreadable directory is simply absent.
        if path is not None and (pointer or os.path.exists(path)):
            fix = f"point {file_var} at a readable JSON credential file, or unset it"
            text = envfiles.read_text(path, fix)
            bundle.values[name] = _checked(name, _compact_json(text, name, path.name), f"file {path.name}")
            bundle.sources[name] = f"file {path.name} (via {file_var})" if pointer else f"file {path}"
            continue
        direct = lookup(name)
        if direct:
            bundle.values[name] = _checked(name, _compact_json(direct[0], name, direct[1]), direct[1])
            bundle.sources[name] = direct[1]

    for name in ("CLAUDE_ACCESS_TOKEN", "GH_TOKEN"):
        found = lookup(name)
        if found:
            bundle.values[name], bundle.sources[name] = _checked(name, *found), found[1]
    if "GH_TOKEN" not in bundle.values and runner.which("gh"):
        result = runner.run(["gh", "auth", "token"], mutates=False, check=False, quiet=True)
        token = result.stdout.strip()
        if result.returncode == 0 and token:
            bundle.values["GH_TOKEN"] = _checked("GH_TOKEN", token, "gh auth token")
            bundle.sources["GH_TOKEN"] = "gh auth token"

    bundle.values = {k: bundle.values[k] for k in KEYS if k in bundle.values}
    for value in bundle.values.values():
        REDACT.add(value)
    return bundle


def check_ignored(root: Path, env_file: Path, runner: Runner) -> str:
    """Refuse credentials git could pick up; returns a warning when there is no git repo."""
    if not git.is_repo(runner, root):
        return f"{root} is not a git checkout: make sure {env_file.name} is never committed"
    if not env_file.resolve().is_relative_to(root.resolve()):
        return ""  # outside the checkout: git cannot commit it
    rel = os.path.relpath(env_file, root)
    if git.is_tracked(runner, root, rel):
        raise NixflyError(
            f"{rel} is tracked by git: credentials would be committed",
            f"run `git rm --cached {rel}`, add it to .gitignore, and rotate anything it held",
        )
    if not git.is_ignored(runner, root, rel):
        raise NixflyError(f"{rel} is not ignored by git", f"add `{rel}` to .gitignore first")
    return ""


def check_env_fly(root: Path, env_file: Path, runner: Runner) -> str:
    """Before ``.env.fly`` is read or written: refuse a symlink (another project's ``.env`` linked there would
    be staged to Fly, and a write would go where it points) and anything but a regular file, then
    ``check_ignored``. Returns its warning."""
    shown = envfiles.shown(env_file)
    if os.path.islink(env_file):
        raise NixflyError(
            f"{shown} is a symlink: nixfly reads and writes credentials only in a file of its own",
            f"remove the link (`rm {shown}`), then run `inv bundle`",
        )
    if os.path.lexists(env_file) and not env_file.is_file():
        raise NixflyError(
            f"{shown} is not a regular file",
            f"move it away (`mv {shown} {shown}.bak`) or choose another file, then run `inv bundle`",
        )
    return check_ignored(root, env_file, runner)


def read_env_fly(root: Path, env_file: Path, runner: Runner) -> tuple[dict[str, str], str]:
    """The values ``.env.fly`` holds, after ``check_env_fly``; and its warning. Missing → {}."""
    warning = check_env_fly(root, env_file, runner)
    if not os.path.lexists(env_file):
        return {}, warning
    return envfiles.read(env_file), warning


def _why(env_file: Path, previous: dict[str, str] | None, values: dict[str, str]) -> str:
    """Why ``.env.fly`` is rewritten, in key names: never a value."""
    if previous is None:
        return f"{env_file.name} is missing"
    parts = [f"{key} added" for key in values if key not in previous]
    parts += [f"{key} changed" for key in values if key in previous and previous[key] != values[key]]
    parts += [f"{key} removed" for key in previous if key not in values]
    return ", ".join(parts) or "rewritten in the current layout"


def refresh(
    root: Path,
    dotenv: Path,
    env_file: Path,
    runner: Runner,
    *,
    dry_run: bool,
    environ: Mapping[str, str] | None = None,
) -> Refresh:
    """Bring ``.env.fly`` up to date with its sources: gather, compare values, rewrite when they differ.

    Keys the old file has and no source has now are kept, with a warning (a token set once in a shell long
    gone). Nothing is written on any error, or in a dry run. Unchanged content is left alone (mode reset to
    0600 when it drifted).
    """
    previous_values, warning = read_env_fly(root, env_file, runner)
    previous = previous_values if os.path.lexists(env_file) else None
    found = gather(root, dotenv, runner, environ)
    values, sources = dict(found.values), dict(found.sources)
    kept = tuple(key for key, value in previous_values.items() if key not in values and value)
    for key in kept:
        values[key] = previous_values[key]
        sources[key] = f"previous {env_file.name}"
    warnings = [warning] if warning else []
    if kept:
        warnings.append(f"kept {', '.join(kept)} from the previous {env_file.name}: no source has them now")

    rendered = envfiles.render(values, HEADER)
    current = envfiles.read_text(env_file, "run `inv bundle`") if previous is not None else None
    changed = current != rendered
    if not dry_run:
        if changed:
            envfiles.write(env_file, values, HEADER)
        elif env_file.stat().st_mode & 0o777 != 0o600:
            os.chmod(env_file, 0o600)
    reason = _why(env_file, previous, values) if changed else ""
    return Refresh(values, sources, changed, reason, kept, tuple(warnings))


def refresh_and_report(s: Settings, runner: Runner) -> None:
    """``inv bundle``: ``refresh``, then a table of each key and where it came from (never a value), the
    mode's required keys that are missing, and every warning."""
    result = refresh(s.root, s.dotenv, s.env_file, runner, dry_run=s.dry_run)
    rows = [(key, result.sources.get(key, "")) for key in result.values]
    rows += [(key, "MISSING (required)") for key in result.missing(s.mode.required_secrets)]
    verb = "would write" if s.dry_run and result.changed else "wrote" if result.changed else "unchanged"
    why = f" ({result.reason})" if result.changed else ""
    console.table(f"{s.env_file.name}: {verb}{why} (mode 0600)", ("key", "source"), rows)
    for warning in result.warnings:
        console.warn(warning)
