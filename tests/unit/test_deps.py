"""nixfly.deps without Nix: reading Nix's hash-mismatch errors (every format it has printed), bun.lock, the
record in ai-server/deps.json, and what `inv doctor` and `inv deps.update` say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nixfly import deps, depsupdate

DRV = "/nix/store/kn61pa3z27ykgyg0pc1iqj6yn3id5cf4-ai-server-node_modules-0.1.0.drv"
REAL = "sha256-rHXMXeQtcFvOwOTWRObp2fyysMRytTa83yeE76W1f7M="
# The same hash as nix32 and hex (`nix hash to-base32`, `nix hash to-base16`).
REAL_NIX32 = "1cvznnjyz117vyy3ddbjqjqb5z6rx7k49mp4q375nw1dwifwqxdc"
REAL_HEX = "ac75cc5de42d705bcec0e4d644e6e9d9fcb2b0c472b536bcdf2784efa5b57fb3"

# Captured from Nix 2.8.0 (Debian), `nix build .#ai-server.node_modules` with the fake hash.
NIX_2_8 = f"""\
building '{DRV}'...
error: hash mismatch in fixed-output derivation '{DRV}':
         specified: {depsupdate.FAKE_HASH}
            got:    {REAL}
"""
# Nix 2.18 to 2.35 print the same text (local-derivation-goal.cc, later derivation-check.cc); recent ones
# colour the arguments (HintFmt's Magenta) and end with "Cannot build … Reason: 1 dependency failed.".
NIX_MODERN = f"""\
error: hash mismatch in fixed-output derivation '\x1b[35;1m{DRV}\x1b[0m':
         specified: \x1b[35;1m{depsupdate.FAKE_HASH}\x1b[0m
            got:    \x1b[35;1m{REAL}\x1b[0m
error: Cannot build '\x1b[35;1m/nix/store/3iyydiawhqsn1q973lwxb078xwdda0l4-ai-server-0.1.0.drv\x1b[0m'.
       Reason: \x1b[31;1m1 dependency failed\x1b[0m.
"""
# Lix adds the likely URL and both paths.
LIX = f"""\
error: hash mismatch in fixed-output derivation '{DRV}':
    likely URL: (unknown)
     specified: {depsupdate.FAKE_HASH}
           got: {REAL}
 expected path: /nix/store/0000000000000000000000000000000a-ai-server-node_modules-0.1.0
      got path: /nix/store/cpf77gqc5wszbgz34b74idd494z5bw0q-ai-server-node_modules-0.1.0
"""
# Nix 2.3 named the output path and printed nix32.
OUT = "/nix/store/cpf77gqc5wszbgz34b74idd494z5bw0q-ai-server-node_modules-0.1.0"
NIX_2_3 = f"""\
hash mismatch in fixed-output derivation '{OUT}':
  wanted: sha256:0000000000000000000000000000000000000000000000000000
  got:    sha256:{REAL_NIX32}
"""


@pytest.mark.parametrize("stderr", [NIX_2_8, NIX_MODERN, LIX, NIX_2_3], ids=["2.8", "modern", "lix", "2.3"])
def test_every_hash_mismatch_format_gives_the_real_hash_as_sri(stderr):
    found = deps.parse_mismatch(stderr)
    assert found is not None and found.ours
    assert found.got == REAL
    assert found.specified.startswith("sha256-")


def test_to_sri_reads_nix32_hex_and_sri():
    assert deps.to_sri(f"sha256:{REAL_NIX32}") == REAL
    assert deps.to_sri(f"sha256:{REAL_HEX}") == REAL
    assert deps.to_sri(REAL) == REAL


def test_stale_error_is_one_line_naming_inv_deps_update():
    error = deps.stale_error(NIX_2_8)
    assert error is not None
    text = str(error)
    assert "\n" not in text and "inv deps.update" in text and REAL in text
    marker = deps.stale_error(f"       > {deps.STALE_MARKER} ai-server/bun.lock changed\n")
    assert marker is not None and "bun.lock changed" in str(marker) and "inv deps.update" in str(marker)


def test_other_fixed_output_mismatches_are_left_to_nix():
    other = NIX_2_8.replace("ai-server-node_modules", "source")
    assert deps.parse_mismatch(other) is not None
    assert deps.stale_error(other) is None
    assert deps.stale_error("error: builder for '/nix/store/x-web.drv' failed with exit code 1") is None


LOCK = """{
  "lockfileVersion": 1,
  "workspaces": {
    "": {
      "name": "ai-server",
      "dependencies": {
        "valibot": "^1.5.0",
      },
    },
  },
  "packages": {
    "@scope/tool": ["@scope/tool@2.0.1", "", { "bin": { "tool": "cli.js" } }, "sha512-x"],

    "valibot": ["valibot@1.5.0", "", {}, "sha512-y, with \\"a quote\\" and ,}"],
  }
}
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "ai-server").mkdir()
    (tmp_path / deps.LOCKFILE).write_text(LOCK)
    (tmp_path / deps.MANIFEST).write_text(json.dumps({"dependencies": {"valibot": "^1.5.0"}}))
    return tmp_path


def test_bun_lock_with_trailing_commas_parses_and_lists_its_packages(app):
    lock = deps.load_lockfile(app / deps.LOCKFILE)
    assert lock["packages"]["valibot"][3] == 'sha512-y, with "a quote" and ,}'
    assert deps.locked_packages(lock) == {"@scope/tool": "2.0.1", "valibot": "1.5.0"}
    assert deps.manifest_mismatch(app, lock) == ""


def test_doctor_problems_follow_the_lockfile_content(app):
    lock = deps.load_lockfile(app / deps.LOCKFILE)
    record = deps.record_text(REAL, deps.lockfile_sha256(app), deps.locked_packages(lock))
    (app / deps.RECORD).write_text(record)
    assert deps.problems(app) == []

    (app / deps.LOCKFILE).write_text(LOCK.replace("valibot@1.5.0", "valibot@1.4.0"))
    [changed] = deps.problems(app)
    assert "bun.lock changed since ai-server/deps.json was written" in changed
    assert "inv deps.update" in changed

    (app / deps.LOCKFILE).write_text(LOCK)
    (app / deps.MANIFEST).write_text(json.dumps({"dependencies": {"valibot": "^1.5.0", "zod": "^4"}}))
    [manifest] = deps.problems(app)
    assert "does not match the dependencies of ai-server/package.json" in manifest
    assert "bun install" in manifest
