import hashlib
import json
import subprocess
import sys
from dataclasses import replace

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from helpers.fakes import ScriptedRunner

from nixfly import sbom
from nixfly.errors import NixflyError
from nixfly.runner import LIMITS, limit_key
from nixfly.sbom import Manifest, Package

STORE = "/nix/store"
APP = f"{STORE}/{'a' * 32}-oneshot-integrated-0.1.0"
LIBC = f"{STORE}/{'b' * 32}-glibc-2.39-52"
NODE = f"{STORE}/{'c' * 32}-ai-server-node_modules-0.1.0"
# One real NAR hash, as Nix 2.8 prints it (SRI) and as `nix hash to-base32` gives it.
SRI = "sha256-1tc/hVh41dwDQ60ldGGiakFQSR0HPgFOA8htSYysYS4="
BASE32 = "sha256:0bk1mj64jvf80d702gh73m4m0hbal9hp89dd8c1xrmbqb22kzmyn"
HEX = "d6d73f855878d5dc0343ad257461a26a4150491d073e014e03c86d498cac612e"  # `nix hash to-base16`

BUN_LOCK = """{
  "lockfileVersion": 1,
  "workspaces": {
    "": { "name": "ai-server", "dependencies": { "valibot": "^1.5.0", "@hono/node-server": "1.2.3", }, },
  },
  "packages": {
    "valibot": ["valibot@1.5.0", "", { "peerDependencies": { "typescript": ">=5" } }, "sha512-x,y=="],
    "@hono/node-server": ["@hono/node-server@1.2.3", "", {}, "sha512-z=="],
    "local": ["local@workspace:packages/local"],
  }
}
"""
MIX_LOCK = """%{
  "jason": {:hex, :jason, "1.4.4", "b922678", [:mix], [], "hexpm", "c5eb0ca"},
  "phoenix": {:hex, :phoenix, "1.7.14", "a7d0b3f", [:mix], [{:jason, "~> 1.0", []}], "hexpm", "c785"},
  "mylib": {:git, "https://example.com/mylib.git", "0123abc", []},
}
"""


def entry(path, refs=(), size=100, nar_hash=SRI):
    return {"path": path, "narHash": nar_hash, "narSize": size, "references": list(refs)}


def closure_list():
    return [entry(APP, [APP, LIBC, NODE], 1000), entry(LIBC, [LIBC], 5000), entry(NODE, [], 300)]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hello-2.12.1", ("hello", "2.12.1")),
        ("ai-server-node_modules-0.1.0", ("ai-server-node_modules", "0.1.0")),
        ("start-oneshot", ("start-oneshot", "")),
        ("perl5.38.2-URI-5.21", ("perl5.38.2-URI", "5.21")),
        ("web", ("web", "")),
        ("a-", ("a-", "")),
    ],
)
def test_names_split_as_nix_drvname_does(name, expected):
    assert sbom.split_name(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("glibc-2.39-52-bin", ("glibc", "2.39-52")),  # diff-closures drops the output name
        ("openssl-3.0.14-lib64", ("openssl", "3.0.14")),
        ("start-oneshot", ("start-oneshot", "")),  # no version left: the name stays whole
        ("coreutils-host", ("coreutils-host", "")),
        ("hello-2.12.1", ("hello", "2.12.1")),
    ],
)
def test_a_package_drops_its_output_suffix_only_when_a_version_is_left(name, expected):
    assert sbom.package_of(name) == expected


@pytest.mark.parametrize(
    ("older", "newer"),
    [  # the cases of NixOS/nix tests/functional/lang/eval-okay-versions.nix (builtins.compareVersions)
        ("1.0", "2.3"),
        ("2.1", "2.3"),
        ("2.3", "2.5"),
        ("2.3", "3.1"),
        ("2.3", "2.3.1"),
        ("2.3a", "2.3.1"),
        ("2.3pre1", "2.3"),
        ("2.3pre3", "2.3pre12"),
        ("2.3a", "2.3c"),
        ("2.3pre1", "2.3c"),
        ("2.3pre1", "2.3q"),
    ],
)
def test_versions_order_as_nix_orders_them(older, newer):
    assert (sbom.compare_versions(older, newer), sbom.compare_versions(newer, older)) == (-1, 1)
    assert sbom.compare_versions(newer, newer) == 0


def test_both_path_info_shapes_give_the_same_closure():
    before_2_19 = [*closure_list(), {"path": f"{STORE}/{'d' * 32}-gone", "valid": False}]
    since_2_19 = {e["path"]: {k: v for k, v in e.items() if k != "path"} for e in closure_list()}
    since_2_19[f"{STORE}/{'d' * 32}-gone"] = None
    newest = {"version": 1, "storeDir": STORE, **since_2_19}
    format_2 = {
        "version": 2,
        "storeDir": STORE,
        "info": {
            path.rsplit("/", 1)[1]: entry
            and {
                **entry,
                "narHash": {"algorithm": "sha256", "format": "base16", "hash": HEX},
                "references": [r.rsplit("/", 1)[1] for r in entry["references"]],
            }
            for path, entry in since_2_19.items()
        },
    }
    old, new = sbom.parse_path_info(before_2_19), sbom.parse_path_info(since_2_19)
    assert old == new == sbom.parse_path_info(newest)
    hex_hashes = sbom.parse_path_info(format_2)
    assert {p: replace(i, nar_hash=SRI) for p, i in hex_hashes.items()} == old
    assert {sbom.sha256_hex(i.nar_hash) for i in hex_hashes.values()} == {HEX}
    assert set(old) == {APP, LIBC, NODE}
    assert old[APP].references == (LIBC, NODE)  # a path's reference to itself is not a dependency
    assert old[LIBC].package == ("glibc", "2.39-52")


def test_path_info_that_is_neither_shape_is_an_error():
    with pytest.raises(NixflyError, match="neither a list nor an object"):
        sbom.parse_path_info("nope")


@pytest.mark.parametrize("nar_hash", [SRI, BASE32, f"sha256:{SRI[7:]}", f"sha256:{HEX}"])
def test_nar_hashes_become_hex_from_either_encoding(nar_hash):
    assert sbom.sha256_hex(nar_hash) == HEX


def test_an_unknown_hash_encoding_gives_no_cyclonedx_hash():
    assert sbom.sha256_hex("md5:abc") == ""


def test_bun_lock_registry_packages_with_scopes_and_trailing_commas():
    assert sbom.npm_packages(BUN_LOCK) == [
        Package("npm", "@hono/node-server", "1.2.3"),
        Package("npm", "valibot", "1.5.0"),
    ]
    assert (
        Package("npm", "@hono/node-server", "1.2.3").purl.to_string() == "pkg:npm/%40hono/node-server@1.2.3"
    )


def test_commas_and_escaped_quotes_inside_strings_are_kept():
    text = '{"packages": {"a": ["a@1.0.0", "x\\",]\\\\", {"k": "v,}",},],},}'
    assert sbom.npm_packages(text) == [Package("npm", "a", "1.0.0")]
    assert json.loads(sbom._without_trailing_commas('["q\\",]", "b\\\\",]')) == ['q",]', "b\\"]


def test_a_broken_bun_lock_says_how_to_rewrite_it():
    with pytest.raises(NixflyError, match=r"bun\.lock cannot be read") as info:
        sbom.npm_packages('{"packages": {')
    assert info.value.hint == "run `bun install` to rewrite it"


def test_mix_lock_hex_packages_without_git_deps():
    assert sbom.hex_packages(MIX_LOCK) == [
        Package("hex", "jason", "1.4.4"),
        Package("hex", "phoenix", "1.7.14"),
    ]
    assert Package("hex", "jason", "1.4.4").purl.to_string() == "pkg:hex/jason@1.4.4"


def test_lock_files_are_found_inside_the_closure(tmp_path):
    node = tmp_path / "node_modules"
    (node).mkdir()
    (node / "bun.lock").write_text(BUN_LOCK)
    web = tmp_path / "web" / "web"
    web.mkdir(parents=True)
    (web / "mix.lock").write_text(MIX_LOCK)
    deep = tmp_path / "deep" / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "bun.lock").write_text('{"packages": {"x": ["x@9.9.9"]}}')  # too deep: not the app's own
    found = sbom.lock_packages(
        [str(node), str(tmp_path / "web"), str(tmp_path / "deep"), "/nix/store/missing"]
    )
    assert {path: [(p.ecosystem, p.name) for p in pinned] for path, pinned in found.items()} == {
        str(node): [("npm", "@hono/node-server"), ("npm", "valibot")],
        str(tmp_path / "web"): [("hex", "jason"), ("hex", "phoenix")],
    }


def manifest():
    return Manifest(
        APP,
        sbom.parse_path_info(closure_list()),
        {NODE: (Package("npm", "@hono/node-server", "1.2.3"),), LIBC: (Package("hex", "jason", "1.4.4"),)},
    )


def test_the_sbom_validates_as_cyclonedx_and_reads_back_the_same():
    text = sbom.to_json(manifest())
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")
    root = doc["metadata"]["component"]
    assert (root["name"], root["version"], root["bom-ref"]) == ("oneshot-integrated", "0.1.0", APP)
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    libc = by_ref[LIBC]
    assert (libc["name"], libc["version"]) == ("glibc", "2.39-52")
    assert libc["hashes"] == [{"alg": "SHA-256", "content": HEX}]
    assert {p["name"]: p["value"] for p in libc["properties"]} == {
        "nix:narinfo:store_path": LIBC,
        "nix:narinfo:nar_hash": SRI,
        "nix:narinfo:nar_size": "5000",
    }
    assert by_ref["pkg:npm/%40hono/node-server@1.2.3"]["purl"] == "pkg:npm/%40hono/node-server@1.2.3"
    depends = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert sorted(depends[APP]) == sorted([LIBC, NODE])
    assert depends[NODE] == ["pkg:npm/%40hono/node-server@1.2.3"]  # a path depends on what its lock pins
    assert depends["pkg:hex/jason@1.4.4"] == []
    assert sbom.from_json(text, "sbom.json") == manifest()


def test_a_nixpacks_release_s_sbom_names_its_locks_config_version_and_revision(tmp_path):
    """Fly's builder makes a nixpacks image: no closure here, so the SBOM holds what the checkout pins."""
    (tmp_path / "ai-server").mkdir()
    (tmp_path / "ai-server" / "bun.lock").write_text(
        '{"packages": {"valibot": ["valibot@1.5.0", "", {}, "sha512-A"],},}'
    )
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "mix.lock").write_text(
        '%{"jason": {:hex, :jason, "1.4.4", "h", [:mix], [], "hexpm"}}'
    )
    (tmp_path / "nixpacks.toml").write_text("providers = []\n")
    made = sbom.nixpacks_manifest(tmp_path, "oneshot", "nixpacks.toml", "1.41.0", "8601514")
    text = sbom.to_json(made)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    root = doc["metadata"]["component"]
    assert (root["name"], root["version"]) == ("nixpacks:oneshot", "8601514")
    config = hashlib.sha256(b"providers = []\n").hexdigest()
    assert {p["name"]: p["value"] for p in root["properties"]} == {
        "nixfly:builder": "nixpacks",
        "nixfly:git:revision": "8601514",
        "nixfly:nixpacks:config": f"nixpacks.toml sha256:{config}",
        "nixfly:nixpacks:version": "1.41.0",
    }
    depends = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert sorted(depends[made.root]) == ["file:ai-server/bun.lock", "file:web/mix.lock"]
    assert depends["file:ai-server/bun.lock"] == ["pkg:npm/valibot@1.5.0"]
    assert depends["file:web/mix.lock"] == ["pkg:hex/jason@1.4.4"]
    assert sbom.from_json(text, "v1.json") == made
    assert [p.name for p in made.packages] == ["jason", "valibot"] and made.paths == {}


def test_a_document_without_store_paths_cannot_be_compared():
    from cyclonedx.model.bom import Bom
    from cyclonedx.output.json import JsonV1Dot6

    with pytest.raises(NixflyError, match="names no Nix store paths"):
        sbom.from_json(JsonV1Dot6(Bom()).output_as_string(), "empty.json")
    with pytest.raises(NixflyError, match="not a CycloneDX JSON document"):
        sbom.from_json('{"components": 3}', "bad.json")


def test_the_closure_is_read_with_nix_path_info_even_in_a_dry_run():
    runner = ScriptedRunner(dry_run=True).on(
        "path-info", "--json", "--recursive", stdout=json.dumps(closure_list())
    )
    found = sbom.manifest_of(runner, APP)
    assert set(found.paths) == {APP, LIBC, NODE}
    assert found.nar_size == 6300
    # Bounded as every nix read is: by nixfly.timeouts.nix.
    assert runner.calls[0].timeout == LIMITS[limit_key(runner.calls[0].argv, remote=False)] == LIMITS["nix"]


def test_importing_sbom_leaves_cyclonedx_unloaded():
    # `inv diff` between store paths, and `inv --list`, must not pay for the library.
    code = (
        "import sys, nixfly.sbom, nixfly.closurediff, nixfly.manifests;"
        "print(any(m.startswith(('cyclonedx', 'packageurl')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
