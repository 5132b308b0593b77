"""`inv sbom` and `inv diff` through the real tasks, on closures real Nix builds from a tiny flake.

Each variant changes one thing against `base`, as a commit would: an npm dependency bumped in the bun.lock
that travels in the closure, a system package added, web's code changed. The diff must name exactly that
thing. The local target's releases are recorded as `inv deploy --target local` records them: generations
of a Nix profile in nixfly's state directory (made here with nix-env, the command activation runs).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from helpers.project import Project, require

from nixfly.nix import FEATURES, without_overrides

pytestmark = [pytest.mark.nix, pytest.mark.slow]

BUN_LOCK = """{
  "lockfileVersion": 1,
  "workspaces": { "": { "name": "ai-server", "dependencies": { "valibot": "^1.5.0", }, }, },
  "packages": {
    "valibot": ["valibot@VERSION", "", {}, "sha512-AAAA=="],
  }
}
"""
# Derivations without nixpkgs (builder /bin/bash, as tests/helpers/sshd.py's tiny flake): a store path
# references another when its output holds that path, as real packages do.
FLAKE = r"""
{
  outputs = { self }:
    let
      mk = name: script: derivation {
        inherit name;
        system = "x86_64-linux";
        builder = "/bin/bash";
        args = [ "-c" ''
          ${script}
          # NixOS/nix#2176: Nix 2.8 may SIGKILL a quick builder after its output closed but before it
          # exited. A child holding the log pipe a moment makes Nix wait.
          /bin/sleep 0.2 &
        '' ];
      };
      libc = mk "tinylibc-2.39" "echo libc > $out";
      hello = mk "hello-2.12.1" "echo hello > $out";
      lockFile = version:
        builtins.toFile "bun.lock" (builtins.replaceStrings [ "VERSION" ] [ version ] BUN_LOCK);
      nodeModules = version:
        mk "ai-server-node_modules-0.1.0" "/bin/mkdir $out; /bin/cp ${lockFile version} $out/bun.lock";
      web = code: mk "web-0.1.0" "/bin/mkdir $out; echo '${code}' > $out/app; echo ${libc} > $out/libc";
      top = { npm ? "1.5.0", code ? "v1", extra ? "" }: mk "oneshot-integrated-0.1.0" ''
        /bin/mkdir $out; echo ${web code} ${nodeModules npm} ${libc} ${extra} > $out/refs
      '';
    in {
      packages.x86_64-linux = {
        base = top { };
        npm = top { npm = "1.6.0"; };
        system = top { extra = "${hello}"; };
        web = top { code = "v2"; };
      };
    };
}
""".replace("BUN_LOCK", json.dumps(BUN_LOCK))  # a JSON string is a valid Nix string here (no ${)
VARIANTS = ("base", "npm", "system", "web")


@pytest.fixture
def built(project: Project, tmp_path: Path) -> dict[str, str]:
    """Each variant's store path (its out-link under tmp_path keeps it from the garbage collector)."""
    require("nix")
    flake = tmp_path / "tiny"
    flake.mkdir()
    (flake / "flake.nix").write_text(FLAKE)
    # The tiny flake has no nixpkgs input to override: the rest of the offline options apply.
    options = without_overrides(shlex.split(os.environ["NIXFLY_NIX_OPTIONS"]))
    found = {}
    for variant in VARIANTS:  # one build each: Nix numbers the out-links of several in its own order
        link = tmp_path / f"result-{variant}"
        subprocess.run(
            ["nix", *FEATURES, "build", f"path:{flake}#{variant}", "--out-link", str(link), *options],
            check=True,
            capture_output=True,
            timeout=600,
        )
        found[variant] = os.readlink(link)
    return found


def diff(project: Project, *args: str) -> dict:
    result = project.inv("diff", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def named(changes: dict) -> dict:
    """Everything a diff names, by group: empty groups left out."""
    groups = {key: changes[key] for key in ("changed", "added", "removed", "rebuilt") if changes[key]}
    return {**groups, **({"packages": changes["packages"]} if changes["packages"] else {})}


def test_a_diff_names_exactly_the_one_thing_that_changed(project: Project, built: dict[str, str]) -> None:
    base = built["base"]
    npm = named(diff(project, "--from", base, "--to", built["npm"]))
    assert npm.pop("packages") == {
        "npm": {"changed": [{"name": "valibot", "old": ["1.5.0"], "new": ["1.6.0"], "size_delta": 0}]}
    }
    # The node_modules path is what the bump rebuilt; nothing else is named.
    assert npm == {"rebuilt": [{"name": "ai-server-node_modules", "version": "0.1.0", "size_delta": 0}]}

    system = diff(project, "--from", base, "--to", built["system"])
    assert named(system) == {"added": [{"name": "hello", "old": [], "new": ["2.12.1"], "size_delta": 120}]}
    assert (system["old_paths"], system["new_paths"]) == (4, 5)  # top, web, node_modules, libc; then hello

    web = diff(project, "--from", base, "--to", built["web"])
    assert [(r["name"], r["version"]) for r in web["rebuilt"]] == [("web", "0.1.0")]
    assert named(web) == {"rebuilt": web["rebuilt"]}
    assert web["dependents"] == 1  # the top level, which only references the new web

    same = project.inv("diff", "--from", base, "--to", base)
    assert (same.returncode, same.stdout.strip()) == (0, "Nothing changes")


def test_releases_recorded_here_sbom_and_diff_against_live(project: Project, built: dict[str, str]) -> None:
    # Two local releases, as activation records them; the second is live.
    profile = project.root / ".nixfly" / "local" / "oneshot" / "profile"
    profile.parent.mkdir(parents=True)
    for variant in ("base", "system"):
        subprocess.run(
            ["nix-env", "--profile", str(profile), "--set", built[variant]], check=True, timeout=120
        )
    (project.root / "result").symlink_to(built["web"])

    written = project.inv("sbom", "--release", "1", "--output", "v1.json", "--json")
    assert written.returncode == 0, written.stderr
    summary = json.loads(written.stdout)
    assert (summary["store_path"], summary["store_paths"], summary["packages"]) == (
        built["base"],
        4,
        {"npm": 1, "hex": 0},
    )
    document = (project.root / "v1.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(document) is None
    purls = {c.get("purl") for c in json.loads(document)["components"]}
    assert "pkg:npm/valibot@1.5.0" in purls

    # The saved SBOM compares like the release it came from; the working tree (./result) against live.
    from_file = diff(project, "--from", "v1.json", "--to", "2")
    assert [a["name"] for a in from_file["added"]] == ["hello"]
    live = diff(project)
    assert (live["old_root"], live["new_root"]) == (built["system"], built["web"])
    assert [r["name"] for r in live["rebuilt"]] == ["web"]
    assert [r["name"] for r in live["removed"]] == ["hello"]

    missing = project.inv("sbom", "--release", "7")
    assert missing.returncode == 1
    assert "no release 7 of oneshot is recorded here (local releases: 1, 2)" in missing.stderr
