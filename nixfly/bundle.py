"""Gathering credentials into ``.env.fly`` (replaces ai-server/scripts/bundle-credentials.sh).

Sources, first match wins: the process environment, then the developer's ``.env``. JSON credentials are read
from the files their variables name, validated and compacted to one line. Only names and sources are ever
printed; values stay in memory, in the 0600 file, and on flyctl's stdin.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nixfly import envfiles, git
from nixfly.errors import NixflyError
from nixfly.runner import REDACT, Runner

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
    inputs: list[Path] = field(default_factory=list)

    def missing(self, required: tuple[str, ...]) -> list[str]:
        return [key for key in required if not self.values.get(key)]


def _compact_json(text: str, name: str, origin: str) -> str:
    try:
        return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except json.JSONDecodeError as exc:
        # exc.msg and the position never quote the content.
        raise NixflyError(
            f"{name} from {origin} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            "fix or replace the credential file, then run `inv bundle` again",
        ) from None


def gather(root: Path, dotenv: Path, runner: Runner, environ: Mapping[str, str] | None = None) -> Bundle:
    """Collect every known credential; raise ``NixflyError`` on a bad source, leaving nothing written."""
    environ = os.environ if environ is None else environ
    file_values = envfiles.read(dotenv) if dotenv.exists() else {}
    bundle = Bundle(inputs=[dotenv] if dotenv.exists() else [])

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
        if pointer and path is not None and not path.is_file():
            raise NixflyError(
                f"{file_var} names {path}, which does not exist",
                f"point {file_var} at the credential file or unset it",
            )
        if path is not None and path.is_file():
            bundle.values[name] = _compact_json(path.read_text(encoding="utf-8"), name, path.name)
            bundle.sources[name] = f"file {path.name} (via {file_var})" if pointer else f"file {path}"
            bundle.inputs.append(path)
            continue
        direct = lookup(name)
        if direct:
            bundle.values[name] = _compact_json(direct[0], name, direct[1])
            bundle.sources[name] = direct[1]

    for name in ("CLAUDE_ACCESS_TOKEN", "GH_TOKEN"):
        found = lookup(name)
        if found:
            bundle.values[name], bundle.sources[name] = found
    if "GH_TOKEN" not in bundle.values and runner.which("gh"):
        result = runner.run(["gh", "auth", "token"], mutates=False, check=False, quiet=True)
        token = result.stdout.strip()
        if result.returncode == 0 and token:
            bundle.values["GH_TOKEN"], bundle.sources["GH_TOKEN"] = token, "gh auth token"

    bundle.values = {k: bundle.values[k] for k in KEYS if k in bundle.values}
    for value in bundle.values.values():
        REDACT.add(value)
    return bundle


def check_ignored(root: Path, env_file: Path, runner: Runner) -> str:
    """Refuse to write credentials git could pick up; returns a warning when there is no git repo."""
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


def stale_reason(env_file: Path, inputs: list[Path]) -> str:
    """Why ``env_file`` must be (re)written, or "" when it is newer than every source."""
    if not env_file.exists():
        return f"{env_file.name} is missing"
    written = env_file.stat().st_mtime
    for source in inputs:
        if source.exists() and source.stat().st_mtime > written:
            return f"{source.name} is newer than {env_file.name}"
    return ""


def keep_previous(env_file: Path, bundle: Bundle) -> list[str]:
    """Carry over keys the old file has and no source has now (a token set once in a shell long gone)."""
    if not env_file.exists():
        return []
    previous = envfiles.read(env_file)
    kept = [k for k in previous if k not in bundle.values and previous[k]]
    for key in kept:
        bundle.values[key] = previous[key]
        bundle.sources[key] = f"previous {env_file.name}"
    return kept


def write(env_file: Path, bundle: Bundle, *, dry_run: bool) -> bool:
    """Write when the content differs; returns whether anything changed. Unchanged → mtime refreshed only."""
    rendered = envfiles.render(bundle.values, HEADER)
    if env_file.exists() and env_file.read_text(encoding="utf-8") == rendered:
        if not dry_run:
            os.chmod(env_file, 0o600)
            os.utime(env_file)
        return False
    if not dry_run:
        envfiles.write(env_file, bundle.values, HEADER)
    return True
