"""Helpers shared by the flyctl simulator's tests: run the simulated flyctl as a subprocess, the way nixfly's
tests drive it, and write fly.toml files."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from flyctl_sim import control

APP = "sim-app"
IMAGE = "registry.fly.io/sim-app:v1"
IMAGE2 = "registry.fly.io/sim-app:v2"
HTTP_CHECKS = """
[http_service]
internal_port = 8080

[[http_service.checks]]
grace_period = "5s"
interval = "10s"
timeout = "2s"
method = "GET"
path = "/health"
"""


def fly(home: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return control.run(home, *args, **kwargs)


def ok(home: Path, *args: str, **kwargs: Any) -> str:
    proc = fly(home, *args, **kwargs)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def fails(home: Path, *args: str, code: int = 1, **kwargs: Any) -> str:
    proc = fly(home, *args, **kwargs)
    assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc.stderr


def write_toml(directory: Path, body: str, app: str = APP, region: str = "ord") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fly.toml"
    path.write_text(f'app = "{app}"\nprimary_region = "{region}"\n{body}', encoding="utf-8")
    return path


def json_stream(text: str) -> list[Any]:
    """Concatenated JSON documents (``volumes create --json --count N``)."""
    decoder, pos, objects = json.JSONDecoder(), 0, []
    text = text.strip()
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        objects.append(obj)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return objects


def http_get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def groups(home: Path, app: str = APP) -> dict[str, list[dict[str, Any]]]:
    """Machines by process group."""
    out: dict[str, list[dict[str, Any]]] = {}
    for m in control.machines(home, app):
        out.setdefault(m["config"]["metadata"]["fly_process_group"], []).append(m)
    return out
