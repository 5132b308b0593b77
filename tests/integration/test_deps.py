"""The ai-server's npm dependencies as a user meets them, with real Nix and the real npm registry (the fixed-
output derivation fetches; Nix runs with the sandbox off here): a changed bun.lock without `inv deps.update`
fails the build in one line, the update fixes it and says what changed, a hash Nix rejects reads the same
way, the fetch goes through the registry the environment names, the same hash every time, and nixpkgs' own
bun (1.2) gives that hash too."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers.project import REPO, require

from nixfly import nix

REAL_REGISTRY = "https://registry.npmjs.org"
RECORD = "ai-server/deps.json"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.lstrip().lower().startswith("error")]


def assert_one_line_naming_the_fix(stderr: str) -> str:
    [line] = error_lines(stderr)
    assert "inv deps.update" in line, stderr
    for raw in ("hash mismatch", "specified:", "got:", "nixfly-deps-stale", "Traceback"):
        assert raw not in stderr, stderr
    return line


def test_a_changed_lockfile_fails_in_one_line_until_deps_update_fixes_it(project):
    require("nix")
    bun = require("bun")
    before = json.loads((project.root / RECORD).read_text())
    # The way a developer changes a dependency: bun rewrites package.json and bun.lock.
    subprocess.run(
        [bun, "add", "--exact", "valibot@1.4.0"],
        cwd=project.root / "ai-server",
        env=project.env,
        check=True,
        capture_output=True,
    )

    stale = project.inv("build")
    assert stale.returncode == 1
    line = assert_one_line_naming_the_fix(stale.stderr)
    assert "ai-server/bun.lock changed since ai-server/deps.json was written" in line
    doctor = project.inv("doctor")
    assert "ai-server/bun.lock changed since ai-server/deps.json was written" in doctor.stderr

    updated = project.inv("deps.update")
    assert updated.returncode == 0, updated.stderr
    after = json.loads((project.root / RECORD).read_text())
    assert after["hash"] != before["hash"]
    assert f"{before['hash']} → {after['hash']}" in updated.stderr
    assert "valibot 1.5.0 → 1.4.0" in updated.stderr
    assert after["lockfile"]["packages"] == {"valibot": "1.4.0"}

    built = project.inv("build")
    assert built.returncode == 0, built.stderr
    valibot = project.root / "result" / "ai-server" / "node_modules" / "valibot" / "package.json"
    assert json.loads(valibot.read_text())["version"] == "1.4.0"


def test_a_hash_nix_rejects_reads_as_one_line_too(project):
    """What CI meets when bun.lock is right but the hash is not (say, another bun version's output)."""
    require("nix")
    record_path = project.root / RECORD
    record = json.loads(record_path.read_text())
    real = record["hash"]
    # A well-formed hash no store path has: Nix must fetch, and then rejects what it got.
    record["hash"] = "sha256-" + "B" * 43 + "="
    record_path.write_text(json.dumps(record))
    result = project.inv("build")
    assert result.returncode == 1
    line = assert_one_line_naming_the_fix(result.stderr)
    assert f"but ai-server/bun.lock fetches {real}" in line


class Mirror(BaseHTTPRequestHandler):
    """A company npm mirror in miniature: forwards to the public registry and remembers what it served."""

    served: list[str]

    def do_GET(self) -> None:
        self.served.append(self.path)
        with urllib.request.urlopen(REAL_REGISTRY + self.path, timeout=60) as upstream:
            body = upstream.read()
            content_type = upstream.headers.get("content-type", "application/octet-stream")
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mirror() -> Iterator[tuple[str, list[str]]]:
    served: list[str] = []
    handler = type("RecordingMirror", (Mirror,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", served
    finally:
        server.shutdown()
        server.server_close()


def test_the_fetch_uses_the_registry_from_the_environment_and_gives_the_same_hash(project, mirror):
    require("nix")
    url, served = mirror
    before = json.loads((project.root / RECORD).read_text())
    env = {"NPM_CONFIG_REGISTRY": url, "BUN_CONFIG_REGISTRY": "", "npm_config_registry": ""}
    updated = project.inv("deps.update", env=env)
    assert updated.returncode == 0, updated.stderr
    assert f"registry: {url} ($NPM_CONFIG_REGISTRY)" in updated.stderr
    assert "/valibot/-/valibot-1.5.0.tgz" in served
    # A fresh fetch (through another registry, even) gives the committed hash: the output is deterministic.
    assert f"unchanged ({before['hash']})" in updated.stderr
    assert json.loads((project.root / RECORD).read_text()) == before
    # And once more, as Nix's own determinism check: fetch again and compare with the store.
    again = subprocess.run(
        nix.argv("build", ".#ai-server.node_modules", "--rebuild", "--no-link"),
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr


# nixpkgs 25.05 (flake.lock) ships a bun 1.2: the oldest and the newest 1.2 release.
NIXPKGS_BUNS = ["1.2.2", "1.2.23"]


@pytest.mark.parametrize("version", NIXPKGS_BUNS)
def test_nixpkgs_bun_gives_node_modules_the_hash_in_deps_json(version, tmp_path):
    """The hash in deps.json is computed here, where the stand-in's bun is this machine's; a user's build
    uses nixpkgs' bun. The fixed-output derivation's own phases (read from flake.nix), run with that bun
    from npm on the derivation's own source, must give the same hash, or real-nixpkgs builds fail."""
    npm = require("npm")
    # The release binary nixpkgs' bun unpacks (bun-linux-x64.zip, bun-linux-aarch64.zip), as npm ships it.
    package = "@oven/bun-linux-" + {"x86_64": "x64", "aarch64": "aarch64"}[platform.machine()]
    install = [npm, "install", "--silent", "--no-save", "--prefix", str(tmp_path / "bun")]
    subprocess.run([*install, f"{package}@{version}"], check=True, capture_output=True, timeout=300)
    bun = tmp_path / "bun" / "node_modules" / package / "bin" / "bun"
    shown = subprocess.run([bun, "--version"], check=True, capture_output=True, text=True).stdout
    assert shown.strip() == version

    def attribute(name: str) -> str:
        argv = nix.argv("eval", "--raw", f".#ai-server.node_modules.{name}")
        return subprocess.run(argv, cwd=REPO, check=True, capture_output=True, text=True).stdout

    # What stdenv does before the phases: the source copied somewhere writable, and the build run there.
    work = tmp_path / "source"
    shutil.copytree(attribute("src"), work)
    for path in [work, *work.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    out = tmp_path / "out"
    script = "\n".join(
        ["set -euo pipefail", "runHook() { :; }", attribute("buildPhase"), attribute("installPhase")]
    )
    env = {
        **os.environ,  # this machine's way out: proxy and CA variables
        "PATH": f"{bun.parent}:{os.environ['PATH']}",
        "TMPDIR": str(tmp_path / "tmp"),
        "out": str(out),
        # The registry as the derivation sees it when the caller sets none (impureEnvVars pass it as "").
        "BUN_CONFIG_REGISTRY": "",
        "NPM_CONFIG_REGISTRY": "",
        "npm_config_registry": "",
    }
    (tmp_path / "tmp").mkdir()
    ran = subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stderr
    assert (out / "node_modules" / "valibot" / "package.json").is_file()
    # NIXFLY_NIX_OPTIONS hold flake flags `nix hash` does not take: a plain nix command line.
    argv = ["nix", "--extra-experimental-features", "nix-command", "hash", "path", str(out)]
    hashed = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()
    assert hashed == json.loads((REPO / RECORD).read_text())["hash"]
