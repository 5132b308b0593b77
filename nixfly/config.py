"""Modes, apps and defaults in one declarative place, and the validation of everything a user can type.

A project overrides any of ``DEFAULTS`` under the ``nixfly`` key of ``invoke.yaml``; a CLI flag beats both:
flag > invoke.yaml > DEFAULTS. Every value is checked here, before anything runs: a wrong type, an unknown
(typo'd) key, an out-of-range number or a name Fly would refuse is one clear line naming the key.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from nixfly import console
from nixfly.errors import NixflyError, brief

Builder = Literal["image", "nixpacks"]
Strategy = Literal["", "rolling", "canary", "bluegreen", "immediate"]
BUILDERS: tuple[Builder, ...] = ("image", "nixpacks")
STRATEGIES: tuple[Strategy, ...] = ("rolling", "canary", "bluegreen", "immediate")

DEFAULTS: dict[str, Any] = {
    # Where bundled credentials live (never committed; `inv bundle` writes it 0600).
    "env_file": ".env.fly",
    # The developer's own dotenv, one of the sources `inv bundle` reads.
    "dotenv": ".env",
    # nixfly's own state: secret fingerprints, deploy lock, build records.
    "state_dir": ".nixfly",
    # Fly organization for new apps (`flyctl apps create --org`); empty: flyctl's default (FLY_ORG sets one).
    "org": "",
    # image: the smoke-tested closure as an OCI image built by Nix, pushed with skopeo; no Docker anywhere.
    # nixpacks: the seed's path (flyctl runs nixpacks, which needs Docker on Fly's remote builder).
    "builder": "image",
    # Where the image builder pushes: <registry>/<app>:nix-<store hash>.
    "registry": "registry.fly.io",
    # flyctl deploy --strategy: rolling, canary, bluegreen or immediate; empty: flyctl's default.
    "strategy": "",
    # The flyctl program to run (a name on PATH or a path); the environment's NIXFLY_FLYCTL beats it.
    "flyctl": "flyctl",
    # Named groups of hosts for `--target NAME`: {"web": ["ssh://deploy@a", "ssh://deploy@b"]} (read from
    # nixfly.targets too, its old name, with a warning).
    "groups": {},
    # How long and how often a deploy waits for the new release to be healthy.
    "health": {
        # Seconds to wait for machines, checks and the health URL after a deploy.
        "timeout": 120,
        # Seconds between polls; doubles up to `max_interval`.
        "interval": 2,
        # The longest wait between polls, in seconds.
        "max_interval": 10,
        # Seconds one HTTP probe may take.
        "http_timeout": 5,
    },
    # `inv preview`: one app per pull request (or branch), deployed through the same pipeline.
    "preview": {
        # App name of a pull request's preview ({app}: the mode's app, {pr}: its number). At most 63
        # characters of lowercase letters, digits and '-' once filled in, or `inv preview` refuses it.
        "name": "{app}-pr-{pr}",
        # App name of a branch's preview, without --pr ({branch}: the branch as lowercase letters, digits
        # and '-'). Both names should start alike: `inv preview.list` reads only apps with that start.
        "branch_name": "{app}-{branch}",
        # The only secret names a preview may receive, each from the preview's env_file if it is there,
        # else from the production bundle (.env.fly's sources). Empty: no secret at all.
        "secrets": [],
        # Preview-only secrets (dotenv format, never committed); a name in it that `secrets` does not list
        # is refused by name.
        "env_file": ".env.preview",
        # Laid over the fly toml's [env] in previews: echo answers without any provider credentials.
        "env": {"AI_PROVIDER": "echo"},
        # Size in GB of a preview's volume, made only when the mode mounts one.
        "volume_size_gb": 1,
    },
    # Seconds one external command may run before nixfly stops it and names it (a hung `flyctl` or `nix`
    # never hangs `inv`). Chosen by the command; a step bounded as a whole (verify: health.timeout) may
    # stop a command sooner.
    "timeouts": {
        # Every flyctl call but the two below: reads (status, releases, checks) and small changes.
        "flyctl": 120,
        # `flyctl deploy` and `flyctl scale count`: they wait for machines to be replaced or started.
        "flyctl_deploy": 1800,
        # nix queries and small changes: eval, path-info, nix-env, nix-store.
        "nix": 600,
        # `nix build`, `nix copy` and `nix flake …`: they download, build and copy closures.
        "nix_build": 7200,
        # skopeo: pushing an image and asking the registry about one.
        "skopeo": 1800,
        # git: reading the checkout's revision and status.
        "git": 60,
        # Any other command run on a host over SSH (activation scripts, probes, stopping a release).
        "ssh": 1800,
        # Any other command run here (gh, the smoke tests).
        "other": 1800,
    },
    # What each deploy mode (`--mode NAME`) builds and where it goes; a mode added here needs at least
    # flake_attr, fly_config and app.
    "modes": {
        "integrated": {
            # The flake attribute `inv build` builds and every target runs (`nix build .#<flake_attr>`).
            "flake_attr": "oneshot-integrated",
            # The flake attribute of the mode's OCI image (the image builder); empty: no image.
            "image_attr": "oci-image-integrated",
            # The mode's fly toml: the app's services, checks, [env] and primary_region.
            "fly_config": "fly-integrated.toml",
            # The nixpacks config the nixpacks builder hands to flyctl (NIXPACKS_CONFIG_FILE).
            "nixpacks_config": "nixpacks.toml",
            # The Fly app (`--app` beats it).
            "app": "oneshot",
            # The Fly volume mounted by the fly toml; empty: the mode has none.
            "volume": "oneshot_data",
            # The size of a new volume, in GB (1 to 500).
            "volume_size_gb": 1,
            # Secrets a deploy refuses to go without (names in .env.fly).
            "required_secrets": ["CLAUDE_ACCESS_TOKEN"],
            # The URL the health gate probes on Fly; {app} is the app's name.
            "health_url": "https://{app}.fly.dev/health",
            # Which program answers the health URL: its /health must name it (and the release).
            "service": "web",
            # The result link `nix build` writes, relative to the checkout.
            "out_link": "result",
            # The pytest marker of the mode's smoke tests in tests/smoke; empty: all of them.
            "smoke": "integrated",
            # What runs the mode's closure (local and ssh targets; the image's Cmd says the same).
            "start": "bin/start-oneshot",
            # Local and ssh targets only: laid over the fly toml's [env]. Fly runs the real provider
            # (the toml says claude); a host answers with echo, which needs no credentials.
            "host_env": {"AI_PROVIDER": "echo"},
        },
        "ai-server-only": {
            "flake_attr": "ai-server",
            "image_attr": "oci-image-ai-server",
            "fly_config": "fly-ai-server.toml",
            "nixpacks_config": "nixpacks-ai-server.toml",
            "app": "oneshot-ai-providers",
            "volume": "",
            "volume_size_gb": 1,
            "required_secrets": ["CLAUDE_ACCESS_TOKEN"],
            "health_url": "https://{app}.fly.dev/health",
            "service": "ai-server",
            "out_link": "result-ai-server",
            "smoke": "ai_server",
            "start": "bin/ai-server",
            "host_env": {"AI_PROVIDER": "echo"},
        },
    },
}


# --- documentation of the settings --------------------------------------------------------------------------
# docs/configuration.md is generated from DEFAULTS (`python -m nixfly.docsgen`): each key is documented by the
# comment lines right above it, or at the end of its line, and a key without one fails the tests. A mode's
# keys are documented once, as modes.<mode>.<key>.
# Settings whose value is a mapping the user fills in: its keys are data, not settings of their own.
MAPPING_VALUES = ("groups", "preview.env", "modes.<mode>.host_env", "modes.<mode>.regions")
# Settings that DEFAULTS does not list, documented here: dotted path → (default, documentation).
UNLISTED: dict[str, tuple[Any, str]] = {
    "modes.<mode>.regions": (
        {},
        "Machines per Fly region ({iad: 2, ams: 1}), converged to by `inv deploy` and `inv scale`; empty: "
        "whatever `fly deploy` creates (one Machine with a volume, or the HA pair, in the primary region).",
    ),
}

# Fly app names: lowercase letters, digits and dashes; 63 is a DNS label's limit. fullmatch everywhere:
# `$` would accept a trailing newline.
APP_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
REGION = re.compile(r"[a-z]{3}")
WHOLE = re.compile(r"[0-9]+")
# Volume names: letters, digits and underscores, at most 30 (the Fly API's rule; flyctl checks nothing).
VOLUME_NAME = re.compile(r"[a-zA-Z0-9_]{1,30}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FLAKE_ATTR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
MODE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
# A host group's name (`--target NAME`): no "/", ":" or ",", so it never reads as a URL or a list.
GROUP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
# Targets that are not groups; a group may not take their names.
BUILTIN_TARGETS = ("fly", "local")
# A file name or path: no control characters (a newline in a path is never meant).
PATH = re.compile(r"[^\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Mode:
    """What one deploy mode builds and where it goes."""

    name: str
    flake_attr: str
    image_attr: str
    fly_config: str
    nixpacks_config: str
    app: str
    volume: str
    volume_size_gb: int
    required_secrets: tuple[str, ...]
    health_url: str
    service: str
    out_link: str
    smoke: str
    start: str
    host_env: Mapping[str, str]
    # Machines per Fly region (`{iad: 2, ams: 1}`), converged to by `inv deploy` and `inv scale`; empty:
    # whatever `fly deploy` creates (one Machine with a volume, or the HA pair, in the primary region).
    regions: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Preview:
    """``nixfly.preview``: how preview apps are named, what they receive, how big their volume is."""

    name: str
    branch_name: str
    secrets: tuple[str, ...]
    env_file: str
    env: Mapping[str, str]
    volume_size_gb: int


@dataclass(frozen=True)
class Health:
    timeout: float
    interval: float
    max_interval: float
    http_timeout: float


@dataclass(frozen=True)
class Settings:
    """Everything a task needs, resolved once: flags > invoke.yaml > DEFAULTS."""

    root: Path
    mode: Mode
    app: str
    region: str
    org: str
    dry_run: bool
    env_file: Path
    dotenv: Path
    state_dir: Path
    builder: Builder
    registry: str
    strategy: Strategy
    health: Health
    flyctl: str
    # Seconds per command kind (``nixfly.timeouts``); ``runner.LIMITS`` holds them while a task runs.
    timeouts: Mapping[str, float] = field(default_factory=dict)
    # Host groups by name (``nixfly.groups``), each a tuple of distinct ``ssh://`` URLs.
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def fly_config(self) -> Path:
        return self.root / self.mode.fly_config

    @property
    def out_link(self) -> Path:
        return self.root / self.mode.out_link

    @property
    def health_url(self) -> str:
        return self.mode.health_url.format(app=self.app)


# --- checking values ----------------------------------------------------------------------------------------
def _problem(key: str, what: str, hint: str = "") -> NixflyError:
    return NixflyError(f"config nixfly.{key}: {what}", hint or "fix it in invoke.yaml (see nixfly/config.py)")


def _text(key: str, value: Any, pattern: re.Pattern[str] | None = None, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _problem(key, f"must be text, not {type(value).__name__}")
    if not value and empty:
        return value
    if pattern is not None and not pattern.fullmatch(value):
        raise _problem(key, f"{brief(value)} is not valid")
    return value


def _relative(key: str, value: Any, *, empty: bool = False) -> str:
    """A path inside the checkout (or the release): relative, no `..`; an absolute one would write (or run)
    wherever it points."""
    path = _text(key, value, PATH, empty=empty)
    if path and (path.startswith("/") or ".." in Path(path).parts):
        raise _problem(key, f"{brief(path)} must be a relative path without '..'")
    return path


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    text = _text(key, value)
    if text not in choices:
        raise _problem(
            key, f"unknown value {brief(text)}", f"choose one of: {', '.join(c for c in choices if c)}"
        )
    return text


def _number(key: str, value: Any, *, low: float = 0.0, high: float = math.inf, whole: bool = False) -> float:
    """A number in (low, high]; YAML's true/false are not numbers."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (whole and not isinstance(value, int))
    ):
        raise _problem(key, f"must be a {'whole ' if whole else ''}number, not {brief(value)}")
    if not (low < value <= high) or math.isnan(value):
        bounds = f"above {low:g}" + (f" and at most {high:g}" if high != math.inf else "")
        raise _problem(key, f"{value!r} is out of range: it must be {bounds}")
    return float(value)


def _named(key: str, check: Callable[[str], str], value: Any) -> str:
    """``check`` of a config value, its error naming the key (a flag's error names the flag)."""
    text = _text(key, value)
    try:
        return check(text)
    except NixflyError as exc:
        raise _problem(key, exc.message, exc.hint or "") from None


def _names(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise _problem(key, f"must be a list of variable names, not {type(value).__name__}")
    return tuple(_named(key, validate_env_name, item) for item in value)


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _problem(key, f"must be a mapping of keys to values, not {type(value).__name__}")
    return value


def _known_keys(key: str, value: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    for name in value:
        if name not in known:
            close = difflib.get_close_matches(str(name), list(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
            raise _problem(f"{key}.{name}" if key else str(name), "is not a setting nixfly knows", hint)


def _health_url(key: str, value: Any) -> str:
    url = _text(key, value)
    try:
        fields = [(n, spec, conv) for _, n, spec, conv in string.Formatter().parse(url) if n is not None]
    except ValueError as exc:
        raise _problem(key, f"{brief(url)} is not a valid template ({exc})") from None
    # Exactly {app}: a conversion ({app!r}) or a format spec ({app:>9999999}) would change or blow up the URL.
    unknown = [f"{{{n}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}" for n, spec, conv in fields]
    unknown = [field for field in unknown if field != "{app}"]
    if unknown:
        raise _problem(key, f"unknown placeholder {brief(unknown[0])[1:-1]}", "the only placeholder is {app}")
    if not url.startswith(("http://", "https://")):
        raise _problem(key, f"{brief(url)} is not an http(s) URL")
    return url


def _host_env(key: str, value: Any) -> dict[str, str]:
    """Laid over the fly toml's [env], so read as flyctl reads [env]: text, numbers, and booleans as
    true/false (flytoml)."""
    found = {}
    for name, item in _mapping(key, value).items():
        _named(key, validate_env_name, name)
        if isinstance(item, bool):
            item = "true" if item else "false"
        found[name] = _text(f"{key}.{name}", str(item) if isinstance(item, int | float) else item)
    return found


def _regions(key: str, value: Any) -> dict[str, int]:
    """``{region code: machines}``: codes of three lowercase letters, counts whole and at least 0. Whether
    Fly has each region is asked of Fly itself when a deploy or scale starts (``fly platform regions``)."""
    found = {}
    for code, count in _mapping(key, value).items():
        if not isinstance(code, str) or not REGION.fullmatch(code):
            raise _problem(key, f"{code!r} is not a Fly region code", "use codes such as iad, ams, syd")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _problem(f"{key}.{code}", f"{count!r} is not a number of machines", "use 0, 1, 2, …")
        found[code] = count
    return found


def region_counts(text: str) -> dict[str, int]:
    """``iad=2,ams=1`` (commas and/or spaces) as ``{region: machines}``: each region once, each count a whole
    number ≥ 0. The codes' existence is Fly's to say (``fly platform regions``)."""
    found: dict[str, int] = {}
    for item in text.replace(",", " ").split():
        code, sep, number = item.partition("=")
        if not sep or not code:
            raise NixflyError(f"{item!r} is not REGION=COUNT", "e.g. iad=2,ams=1")
        validate_region(code)
        if code in found:
            raise NixflyError(f"region {code} is given twice", "name each region once, e.g. iad=2,ams=1")
        if not WHOLE.fullmatch(number):
            raise NixflyError(
                f"{code}={number}: the count must be a whole number of machines, 0 or more", f"e.g. {code}=2"
            )
        found[code] = int(number)
    return found


def validate_hosts(urls: Any) -> tuple[str, ...]:
    """A host group: a non-empty list of ``ssh://`` URLs, none twice (a host deployed to twice at once
    would fight over its own lock and profile). Returns them as ``ssh://user@host[:port]``."""
    # remote.py imports this module (env names), so its endpoint parser is imported here, at call time.
    from nixfly.endpoint import parse_endpoint

    if not isinstance(urls, list | tuple) or not urls:
        raise NixflyError("a host group must be a non-empty list of ssh://user@host[:port] URLs")
    seen: dict[tuple[str, str, int | None], str] = {}
    for url in urls:
        if not isinstance(url, str) or not url.startswith("ssh://"):
            raise NixflyError(f"{url!r} is not an ssh:// URL", "list hosts as ssh://user@host[:port]")
        try:
            endpoint = parse_endpoint(url)
        except NixflyError as exc:
            raise NixflyError(exc.message, "list hosts as ssh://user@host[:port]") from None
        same = (endpoint.user, endpoint.host.lower(), endpoint.port)
        if same in seen:
            raise NixflyError(f"{url} is listed twice", "list each host once")
        seen[same] = f"ssh://{endpoint}"
    return tuple(seen.values())


def _groups(key: str, value: Any) -> dict[str, tuple[str, ...]]:
    groups = {}
    for name, urls in _mapping(key, value).items():
        where = f"{key}.{name}"
        if not isinstance(name, str) or not GROUP_NAME.fullmatch(name):
            raise _problem(where, "group names use lowercase letters, digits, '-' and '_'")
        if name in BUILTIN_TARGETS:
            raise _problem(where, f"{name!r} is a target of its own", "give the group another name")
        try:
            groups[name] = validate_hosts(urls)
        except NixflyError as exc:
            raise _problem(where, exc.message, exc.hint or "") from None
    return groups


MODE_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "flake_attr": lambda k, v: _text(k, v, FLAKE_ATTR),
    "image_attr": lambda k, v: _text(k, v, FLAKE_ATTR, empty=True),
    "fly_config": lambda k, v: _text(k, v, PATH),
    "nixpacks_config": lambda k, v: _text(k, v, PATH, empty=True),
    "app": lambda k, v: _named(k, validate_app, v),
    "volume": lambda k, v: _named(k, validate_volume, v) if v != "" else "",
    "volume_size_gb": lambda k, v: int(_number(k, v, high=500, whole=True)),
    "required_secrets": _names,
    "health_url": _health_url,
    "service": lambda k, v: _text(k, v, empty=True),
    "out_link": lambda k, v: _relative(k, v),
    "smoke": lambda k, v: _text(k, v, ENV_NAME, empty=True),
    "start": lambda k, v: _relative(k, v, empty=True),
    "host_env": _host_env,
    "regions": _regions,
}
TOP_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "env_file": lambda k, v: _text(k, v, PATH),
    "dotenv": lambda k, v: _text(k, v, PATH),
    "state_dir": lambda k, v: _text(k, v, PATH),
    "org": lambda k, v: _text(k, v, re.compile(r"[a-z0-9][a-z0-9-]*"), empty=True),
    "builder": lambda k, v: _choice(k, v, BUILDERS),
    "registry": lambda k, v: _text(k, v, re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?")),
    "strategy": lambda k, v: _choice(k, v, ("", *STRATEGIES)),
    "flyctl": lambda k, v: _text(k, v, PATH),
    "groups": _groups,
    "preview": lambda k, v: _preview(v),
    "health": lambda k, v: v,  # checked by _health
    "timeouts": lambda k, v: v,  # checked by _timeouts
    "modes": lambda k, v: v,  # checked by load_mode
}
HEALTH_KEYS = ("timeout", "interval", "max_interval", "http_timeout")


def plain(value: Any) -> Any:
    """Invoke's config proxies → plain dicts and lists."""
    if isinstance(value, Mapping) or hasattr(value, "keys"):
        return {k: plain(value[k]) for k in value}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def merged(config: Any) -> dict[str, Any]:
    """DEFAULTS deep-merged with the project's ``nixfly`` section, which is checked for shape first."""
    over = plain(config) if config is not None else {}
    if not isinstance(over, dict):
        raise NixflyError(
            f"config nixfly: must be a mapping of settings, not {type(over).__name__}",
            "fix invoke.yaml (nixfly/config.py has the defaults)",
        )
    over = _renamed(over)
    _known_keys("", over, TOP_KEYS)
    for section in ("health", "modes", "preview", "timeouts"):
        if section in over:
            _mapping(section, over[section])
    return _merge(DEFAULTS, over)


# Keys renamed in nixfly's config, old → new: the old one is still read, with a warning naming the new one,
# so a user's invoke.yaml keeps working.
RENAMED = {"targets": "groups"}
_WARNED: set[str] = set()


def _renamed(over: dict[str, Any]) -> dict[str, Any]:
    """``over`` with each old key (``RENAMED``) under its new name; both given is refused."""
    over = dict(over)
    for old, new in RENAMED.items():
        if old not in over:
            continue
        if new in over:
            raise _problem(
                old,
                f"and nixfly.{new} are both set: nixfly.{old} is the old name of nixfly.{new}",
                f"keep nixfly.{new} only",
            )
        if old not in _WARNED:
            _WARNED.add(old)
            console.warn(
                f"invoke.yaml: nixfly.{old} is now called nixfly.{new}: rename the key (read as it is)"
            )
        over[new] = over.pop(old)
    return over


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
        )
    return out


def load_mode(name: str, config: Any = None) -> Mode:
    modes = merged(config)["modes"]
    if not isinstance(name, str) or name not in modes:
        raise NixflyError(
            f"unknown mode {brief(name)}",
            f"choose one of: {', '.join(sorted(modes))} (e.g. --mode integrated)",
        )
    key = f"modes.{name}"
    if not MODE_NAME.fullmatch(name):
        raise _problem(key, "mode names use lowercase letters, digits, '-' and '_'")
    raw = _mapping(key, modes[name])
    _known_keys(key, raw, MODE_KEYS)
    missing = [k for k in ("flake_attr", "fly_config", "app") if k not in raw]
    if missing:
        raise _problem(key, f"lacks {', '.join(missing)}")
    base = DEFAULTS["modes"].get(name, {})
    defaults = {
        "image_attr": "",
        "nixpacks_config": "",
        "volume": "",
        "volume_size_gb": 1,
        "required_secrets": [],
        "health_url": "https://{app}.fly.dev/health",
        "service": "",
        "out_link": "result",
        "smoke": "",
        "start": "",
        "host_env": {},
        "regions": {},
        **base,
    }
    values = {k: MODE_KEYS[k](f"{key}.{k}", raw.get(k, defaults.get(k))) for k in MODE_KEYS}
    return Mode(name=name, **values)


def _name_template(key: str, value: Any, placeholder: str) -> str:
    """A preview name template: {app} and ``placeholder`` (which it must hold: one app per PR or branch)."""
    text = _text(key, value)
    try:
        fields = [(n, spec, conv) for _, n, spec, conv in string.Formatter().parse(text) if n is not None]
    except ValueError as exc:
        raise _problem(key, f"{brief(text)} is not a valid template ({exc})") from None
    names = [n for n, spec, conv in fields if not spec and not conv]
    if placeholder not in names or len(names) != len(fields) or set(names) - {"app", placeholder}:
        raise _problem(
            key, f"{brief(text)} must hold {{{placeholder}}}", "the only other placeholder is {app}"
        )
    return text


PREVIEW_KEYS: dict[str, Callable[[str, Any], Any]] = {
    "name": lambda k, v: _name_template(k, v, "pr"),
    "branch_name": lambda k, v: _name_template(k, v, "branch"),
    "secrets": _names,
    "env_file": lambda k, v: _relative(k, v),
    "env": _host_env,
    "volume_size_gb": lambda k, v: int(_number(k, v, high=500, whole=True)),
}


def load_preview(config: Any) -> Preview:
    """``nixfly.preview`` merged over its defaults, every key checked."""
    return _preview(merged(config)["preview"])


def _preview(raw: Any) -> Preview:
    # Checked by every task, not only the preview ones: a typo here is refused before anything runs.
    section = _mapping("preview", raw)
    _known_keys("preview", section, PREVIEW_KEYS)
    return Preview(**{k: PREVIEW_KEYS[k](f"preview.{k}", section[k]) for k in PREVIEW_KEYS})


def _health(raw: Any) -> Health:
    """Seconds, each above 0 and at most an hour (0 would make every probe fail at once)."""
    section = _mapping("health", raw)
    _known_keys("health", section, dict.fromkeys(HEALTH_KEYS))
    timeout, interval, max_interval, http_timeout = (
        _number(f"health.{key}", section[key], high=3600) for key in HEALTH_KEYS
    )
    return Health(timeout, interval, max(interval, max_interval), http_timeout)


def _timeouts(raw: Any) -> dict[str, float]:
    """Seconds per command kind, each above 0 and at most a day."""
    section = _mapping("timeouts", raw)
    _known_keys("timeouts", section, DEFAULTS["timeouts"])
    return {key: _number(f"timeouts.{key}", section[key], high=86400) for key in DEFAULTS["timeouts"]}


def validate_app(name: str) -> str:
    if not isinstance(name, str) or not APP_NAME.fullmatch(name):
        raise NixflyError(
            f"invalid app name {brief(name)}",
            "Fly app names use lowercase letters, digits and dashes (at most 63, no leading/trailing dash)",
        )
    return name


def validate_region(code: str) -> str:
    if not isinstance(code, str) or not REGION.fullmatch(code):
        raise NixflyError(
            f"invalid region {brief(code)}", "use a three-letter Fly region code such as iad or ams"
        )
    return code


def validate_volume(name: str) -> str:
    if not VOLUME_NAME.fullmatch(name):
        raise NixflyError(
            f"invalid volume name {brief(name)}",
            "volume names use letters, digits and underscores (at most 30)",
        )
    return name


def validate_env_name(name: str) -> str:
    if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
        raise NixflyError(f"invalid variable name {brief(name)}", "use letters, digits and underscores")
    return name


def validate_choice(kind: str, value: str, choices: tuple[str, ...]) -> Any:
    if value not in choices:
        raise NixflyError(
            f"unknown {kind} {brief(value)}", f"choose one of: {', '.join(c for c in choices if c)}"
        )
    return value


def state_dir(config: Any, root: Path) -> Path:
    """Where nixfly keeps its records (``nixfly.state_dir``), without looking at it: ``inv clean`` needs the
    path even when what is there is wrong."""
    return root / TOP_KEYS["state_dir"]("state_dir", merged(config)["state_dir"])


def check_state_dir(root: Path, path: Path) -> Path:
    """The state directory, if it exists, must be a writable directory that is not the checkout itself."""
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    if path.resolve() == root.resolve() or root.resolve().is_relative_to(path.resolve()):
        raise _problem("state_dir", f"{shown} is the checkout or holds it", "use a directory of its own")
    if os.path.lexists(path) and not path.is_dir():
        raise NixflyError(
            f"{shown} is not a directory: nixfly keeps its records there (nixfly.state_dir)",
            f"move it away (`mv {shown} {shown}.bak`), or set nixfly.state_dir in invoke.yaml",
        )
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise NixflyError(f"{shown} is not writable", f"make it writable (`chmod u+rwx {shown}`)")
    return path


def resolve(
    config: Any,
    root: Path,
    *,
    mode: str = "integrated",
    app: str = "",
    region: str = "",
    dry_run: bool = False,
    env_file: str = "",
    builder: str = "",
    strategy: str = "",
) -> Settings:
    """Turn a task's flags plus Invoke config into validated ``Settings`` (raises ``NixflyError``)."""
    from nixfly import flytoml

    cfg = merged(config)
    top = {k: TOP_KEYS[k](k, cfg[k]) for k in TOP_KEYS}
    chosen = load_mode(mode, config)
    app = validate_app(app or chosen.app)
    fly_config = root / chosen.fly_config
    if not region:
        region = flytoml.load(fly_config).primary_region if fly_config.is_file() else ""
    region = validate_region(region or "iad")
    if env_file and not PATH.fullmatch(env_file):
        raise NixflyError(f"--env-file {brief(env_file)} is not a usable file name", "no control characters")
    chosen_strategy = validate_choice("strategy", strategy, STRATEGIES) if strategy else top["strategy"]
    return Settings(
        root=root,
        mode=chosen,
        app=app,
        region=region,
        org=top["org"],
        dry_run=dry_run,
        env_file=root / (env_file or top["env_file"]),
        dotenv=root / top["dotenv"],
        state_dir=check_state_dir(root, root / top["state_dir"]),
        builder=cast(Builder, validate_choice("builder", builder, BUILDERS) if builder else top["builder"]),
        registry=top["registry"],
        strategy=cast(Strategy, chosen_strategy),
        health=_health(cfg["health"]),
        timeouts=_timeouts(cfg["timeouts"]),
        flyctl=os.environ.get("NIXFLY_FLYCTL") or top["flyctl"],
        groups=top["groups"],
    )
