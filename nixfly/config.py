"""Modes, apps and defaults in one declarative place, and the validation of everything a user can type.

``DEFAULTS`` is installed as the ``nixfly`` key of Invoke's configuration (``ns.configure`` in tasks.py), so a
project overrides any of it in ``invoke.yaml`` and a CLI flag beats both: flag > invoke.yaml > DEFAULTS.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nixfly.errors import NixflyError

DEFAULTS: dict[str, Any] = {
    # Where bundled credentials live (never committed; `inv bundle` writes it 0600).
    "env_file": ".env.fly",
    # The developer's own dotenv, one of the sources `inv bundle` reads.
    "dotenv": ".env",
    # nixfly's own state: secret fingerprints, deploy lock, build cache.
    "state_dir": ".nixfly",
    "org": "",
    # nixpacks: the seed's path (flyctl runs nixpacks, which needs Docker on Fly's remote builder).
    # image: build the OCI image with Nix and push it with skopeo; no Docker anywhere.
    "builder": "nixpacks",
    "registry": "registry.fly.io",
    "strategy": "",
    "health": {
        # Seconds to wait for machines and checks to pass after a deploy.
        "timeout": 120,
        # Seconds between polls; doubles up to `max_interval`.
        "interval": 2,
        "max_interval": 10,
        "http_timeout": 5,
    },
    "modes": {
        "integrated": {
            "flake_attr": "oneshot-integrated",
            "image_attr": "oci-image-integrated",
            "fly_config": "fly-integrated.toml",
            "app": "oneshot",
            "volume": "oneshot_data",
            "volume_size_gb": 1,
            "required_secrets": ["CLAUDE_ACCESS_TOKEN"],
            "health_url": "https://{app}.fly.dev/health",
            "out_link": "result",
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
            "app": "oneshot-ai-providers",
            "volume": "",
            "volume_size_gb": 1,
            "required_secrets": ["CLAUDE_ACCESS_TOKEN"],
            "health_url": "https://{app}.fly.dev/health",
            "out_link": "result-ai-server",
            "smoke": "ai_server",
            "start": "bin/ai-server",
            "host_env": {"AI_PROVIDER": "echo"},
        },
    },
}

# Fly app names: lowercase letters, digits and dashes (flyctl.md §1); 63 is a DNS label's limit.
APP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
REGION = re.compile(r"^[a-z]{3}$")
# Volume names: alphanumerics and underscores, at most 30 (flyctl.md §2).
VOLUME_NAME = re.compile(r"^[a-zA-Z0-9_]{1,30}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FLAKE_ATTR = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
STRATEGIES = ("rolling", "canary", "bluegreen", "immediate")
BUILDERS = ("nixpacks", "image")


@dataclass(frozen=True)
class Mode:
    """What one deploy mode builds and where it goes."""

    name: str
    flake_attr: str
    image_attr: str
    fly_config: str
    app: str
    volume: str
    volume_size_gb: int
    required_secrets: tuple[str, ...]
    health_url: str
    out_link: str
    smoke: str
    start: str
    host_env: Mapping[str, str] = field(default_factory=dict)


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
    builder: str
    registry: str
    strategy: str
    health: Health
    flyctl: str

    @property
    def fly_config(self) -> Path:
        return self.root / self.mode.fly_config

    @property
    def out_link(self) -> Path:
        return self.root / self.mode.out_link

    @property
    def health_url(self) -> str:
        return self.mode.health_url.format(app=self.app)


def plain(value: Any) -> Any:
    """Invoke's config proxies → plain dicts and lists."""
    if isinstance(value, Mapping) or hasattr(value, "keys"):
        return {k: plain(value[k]) for k in value}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def merged(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """DEFAULTS deep-merged with a (possibly partial) ``nixfly`` config section."""
    return _merge(DEFAULTS, plain(config) if config else {})


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
        )
    return out


def mode_names(config: Mapping[str, Any] | None = None) -> list[str]:
    return sorted(merged(config)["modes"])


def load_mode(name: str, config: Mapping[str, Any] | None = None) -> Mode:
    modes = merged(config)["modes"]
    if name not in modes:
        raise NixflyError(
            f"unknown mode {name!r}", f"choose one of: {', '.join(sorted(modes))} (e.g. --mode integrated)"
        )
    raw = modes[name]
    try:
        mode = Mode(
            name=name,
            flake_attr=str(raw["flake_attr"]),
            image_attr=str(raw.get("image_attr", "")),
            fly_config=str(raw["fly_config"]),
            app=str(raw["app"]),
            volume=str(raw.get("volume") or ""),
            volume_size_gb=int(raw.get("volume_size_gb", 1)),
            required_secrets=tuple(str(s) for s in raw.get("required_secrets", ())),
            health_url=str(raw.get("health_url", "https://{app}.fly.dev/health")),
            out_link=str(raw.get("out_link", "result")),
            smoke=str(raw.get("smoke", "")),
            start=str(raw.get("start", "")),
            host_env={str(k): str(v) for k, v in dict(raw.get("host_env") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise NixflyError(
            f"mode {name!r} is misconfigured: {exc}", "fix nixfly.modes in invoke.yaml (see nixfly/config.py)"
        ) from None
    if not FLAKE_ATTR.match(mode.flake_attr):
        raise NixflyError(f"mode {name!r}: invalid flake attribute {mode.flake_attr!r}")
    if mode.volume:
        validate_volume(mode.volume)
    for name in (*mode.required_secrets, *mode.host_env):
        validate_env_name(name)
    return mode


def validate_app(name: str) -> str:
    if not APP_NAME.match(name):
        raise NixflyError(
            f"invalid app name {name!r}",
            "Fly app names use lowercase letters, digits and dashes (at most 63, no leading/trailing dash)",
        )
    return name


def validate_region(code: str) -> str:
    if not REGION.match(code):
        raise NixflyError(f"invalid region {code!r}", "use a three-letter Fly region code such as iad or ams")
    return code


def validate_volume(name: str) -> str:
    if not VOLUME_NAME.match(name):
        raise NixflyError(
            f"invalid volume name {name!r}", "volume names use letters, digits and underscores (at most 30)"
        )
    return name


def validate_env_name(name: str) -> str:
    if not ENV_NAME.match(name):
        raise NixflyError(f"invalid variable name {name!r}", "use letters, digits and underscores")
    return name


def validate_choice(kind: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise NixflyError(f"unknown {kind} {value!r}", f"choose one of: {', '.join(choices)}")
    return value


def resolve(
    config: Mapping[str, Any] | None,
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
    chosen = load_mode(mode, config)
    app = validate_app(app or chosen.app)
    fly_config = root / chosen.fly_config
    if not region:
        region = flytoml.load(fly_config).primary_region if fly_config.exists() else ""
    region = validate_region(region or "iad")
    health = cfg["health"]
    return Settings(
        root=root,
        mode=chosen,
        app=app,
        region=region,
        org=str(cfg.get("org") or ""),
        dry_run=dry_run,
        env_file=root / (env_file or cfg["env_file"]),
        dotenv=root / cfg["dotenv"],
        state_dir=root / cfg["state_dir"],
        builder=validate_choice("builder", builder or cfg["builder"], BUILDERS),
        registry=str(cfg["registry"]),
        strategy=validate_choice("strategy", strategy, STRATEGIES)
        if strategy
        else str(cfg.get("strategy") or ""),
        health=Health(
            timeout=float(health["timeout"]),
            interval=float(health["interval"]),
            max_interval=float(health["max_interval"]),
            http_timeout=float(health["http_timeout"]),
        ),
        flyctl=os.environ.get("NIXFLY_FLYCTL") or str(cfg.get("flyctl") or "flyctl"),
    )
