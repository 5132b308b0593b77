"""Preview apps: names, the ownership marker, durations, which secrets a preview may get, and its fly toml.

Pure values only (no flyctl, no files written): ``nixfly.fly.preview`` applies them. Every function that
takes user input checks it before anything changes and says what to type instead.

The marker: Fly has no app metadata that ``fly apps create`` can set (internal/command/apps/create.go
``RunCreate`` sends only the name, org and network), ``fly deploy`` sets no user machine metadata (deploy.go
``New``: its ``--label`` is an image label), and machines exist only after a first deploy that got as far as
creating them. A SECRET exists from right after ``apps create``: ``fly secrets import --stage`` works on an
app with no machines (secrets.go ``DeploySecrets``: "Secrets are staged for the first deployment"), and
``fly secrets list --json`` returns every secret's NAME in every flyctl era (list.go ``buildSecretRows``;
values never). So the marker is a secret whose name says the PR and the time: ``NIXFLY_PREVIEW_PR_12_AT_
1765000000`` (a branch preview: ``NIXFLY_PREVIEW_BRANCH_AT_1765000000``). Only nixfly writes that name, and
``preview.destroy`` / ``preview.prune`` act on an app only after reading it back.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nixfly.config import APP_NAME, Preview
from nixfly.errors import NixflyError, brief

MARKER = re.compile(r"NIXFLY_PREVIEW_(?:PR_([1-9][0-9]{0,8})|BRANCH)_AT_([0-9]{1,12})")
# `inv preview.prune --older-than 7d`: a whole number and one unit.
DURATION = re.compile(r"([0-9]{1,6})([smhdw])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
PR_NUMBER = re.compile(r"[1-9][0-9]{0,8}")
# One DNS label: what a Fly app name may be at most (config.APP_NAME).
MAX_APP_NAME = 63
# A shortened branch slug keeps at least one character, then "-" and a digest of the branch: 8 in all.
SHORTENED = 8


@dataclass(frozen=True)
class Marker:
    """What the marker secret's name says: the PR (0 for a branch preview) and when nixfly created the app."""

    pr: int
    created: int  # Unix seconds

    @property
    def name(self) -> str:
        what = f"PR_{self.pr}" if self.pr else "BRANCH"
        return f"NIXFLY_PREVIEW_{what}_AT_{self.created}"


def parse_marker(names: list[str]) -> Marker | None:
    """The marker among an app's secret names, or None: such an app is not a preview nixfly made."""
    for name in names:
        found = MARKER.fullmatch(name)
        if found:
            return Marker(int(found.group(1) or 0), int(found.group(2)))
    return None


def pr_number(text: str | int) -> int:
    """``--pr N``: a positive whole number (GitHub's PR numbers), checked before anything runs."""
    if isinstance(text, bool) or not PR_NUMBER.fullmatch(str(text)):
        raise NixflyError(
            f"--pr {brief(text)} is not a pull request number", "give the number GitHub shows, e.g. --pr 12"
        )
    return int(text)


def branch_slug(branch: str) -> str:
    """A branch as app-name text: lowercase ASCII letters and digits, every other run of characters one
    ``-``, none at either end (what flyctl's own launch does to a directory name: launch/plan_builder.go
    ``sanitizeAppName``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower().encode("ascii", "ignore").decode()).strip("-")
    if not slug:
        raise NixflyError(
            f"branch {brief(branch)} has no letters or digits to name a preview after",
            "pass --pr N, or deploy from a named branch",
        )
    return slug


def app_name(preview: Preview, app: str, *, pr: int = 0, branch: str = "") -> str:
    """The preview's app name from ``nixfly.preview.name`` (``--pr``) or ``branch_name``: a name Fly takes
    (lowercase letters, digits and dashes, at most 63: one DNS label), else an error before anything runs."""
    if pr:
        name = preview.name.format(app=app, pr=pr)
    else:
        slug = branch_slug(branch)
        room = MAX_APP_NAME - len(preview.branch_name.format(app=app, branch=""))
        if len(slug) > room >= SHORTENED:
            # A long branch keeps its start and gets a digest of its whole name: two long branches that
            # start alike still get apps of their own.
            digest = hashlib.sha256(branch.encode()).hexdigest()[: SHORTENED - 2]
            slug = f"{slug[: room - SHORTENED + 1].rstrip('-')}-{digest}"
        name = preview.branch_name.format(app=app, branch=slug)
    if not APP_NAME.fullmatch(name):
        long = len(name) > MAX_APP_NAME
        what = f"{len(name)} characters, at most 63" if long else "lowercase letters, digits, '-'"
        raise NixflyError(
            f"preview app name {brief(name)} is not one Fly accepts ({what})",
            "shorten nixfly.preview.name (--pr) or branch_name (a branch) in invoke.yaml",
        )
    return name


def prefix(preview: Preview, app: str) -> str:
    """What every preview name of ``app`` starts with: ``preview.list`` reads markers only of such apps."""
    heads = []
    for template in (preview.name, preview.branch_name):
        literal = ""
        for text, field, _, _ in string.Formatter().parse(template):
            literal += text
            if field != "app":
                break
            literal += app
        heads.append(literal)
    common = heads[0]
    while not heads[1].startswith(common):
        common = common[:-1]
    return common


def duration(text: str) -> int:
    """``--older-than``: a whole number and a unit (s, m, h, d, w), e.g. 7d; in seconds."""
    found = DURATION.fullmatch(text or "")
    if not found or int(found.group(1)) == 0:
        raise NixflyError(
            f"--older-than {brief(text)} is not a duration",
            "use a number and s, m, h, d or w, e.g. 7d or 36h",
        )
    return int(found.group(1)) * UNIT_SECONDS[found.group(2)]


def age(seconds: float) -> str:
    """A duration for people: the largest unit, whole (``3d``, ``5h``, ``0m``)."""
    for unit in ("w", "d", "h", "m"):
        if seconds >= UNIT_SECONDS[unit]:
            return f"{int(seconds // UNIT_SECONDS[unit])}{unit}"
    return "0m"


def preview_secrets(
    allowed: tuple[str, ...], production: Mapping[str, str], own: Mapping[str, str]
) -> dict[str, str]:
    """What a preview receives: each name of ``nixfly.preview.secrets``, from ``.env.preview`` (``own``)
    first, else from the production bundle. Any other name ``.env.preview`` holds is refused by name: a
    production credential pasted there must not reach a preview unnoticed."""
    unlisted = sorted(set(own) - set(allowed))
    if unlisted:
        raise NixflyError(
            f"a preview would receive {', '.join(unlisted)}, which nixfly.preview.secrets does not list",
            "remove them from .env.preview, or list them in nixfly.preview.secrets in invoke.yaml",
        )
    chosen = {name: own[name] for name in allowed if name in own}
    chosen.update({name: production[name] for name in allowed if name not in own and name in production})
    return chosen


def preview_toml(raw: Mapping[str, Any], app: str, env: Mapping[str, str], volume_size_gb: int) -> str:
    """The mode's fly toml made a preview's: its own app, ``env`` laid over [env], machines stopped when idle
    and started on a request (none kept running), and the mount's first volume sized from config."""
    data = copy.deepcopy(dict(raw))
    data["app"] = app
    data["env"] = {**(data.get("env") or {}), **env}
    services = [data["http_service"]] if isinstance(data.get("http_service"), dict) else []
    services += data.get("services") or []
    for service in services:
        service.update(auto_stop_machines="stop", auto_start_machines=True, min_machines_running=0)
    for key in ("mounts", "mount"):
        mounts = data.get(key)
        for mount in [mounts] if isinstance(mounts, dict) else mounts or []:
            mount["initial_size"] = f"{volume_size_gb}gb"
    return f"# Written by `inv preview` from the mode's fly toml; do not edit.\n{toml(data)}"


def toml(data: Mapping[str, Any], path: str = "") -> str:
    """TOML for the values a fly toml holds (tables, arrays of tables, strings, numbers, booleans, arrays):
    plain keys first, then tables. JSON's string escapes are valid TOML basic strings."""
    plain = [(k, v) for k, v in data.items() if not _is_table(v) and not _is_tables(v)]
    lines = [f"{_key(k)} = {_value(v)}" for k, v in plain]
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value in data.items():
        where = f"{path}.{_key(key)}" if path else _key(key)
        if _is_table(value):
            out += f"\n[{where}]\n{toml(value, where)}"
        elif _is_tables(value):
            for item in value:
                out += f"\n[[{where}]]\n{toml(item, where)}"
    return out


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise NixflyError(f"cannot write {type(value).__name__} values to a preview's fly toml")
