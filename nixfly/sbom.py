"""What a closure ships, as a CycloneDX SBOM: every store path, and the npm and hex packages inside it.

The closure comes from ``nix path-info --json --recursive``. Each store path is a component: its name and
version split from the store path's name the way Nix does (``DrvName``), its NAR hash and size under the
CycloneDX property taxonomy's ``nix:narinfo:*`` names, and its references as the BOM's dependencies. The
npm and hex packages are read from the lock files *inside* the closure (the flake copies ai-server's
``bun.lock`` into the store, a Mix project's ``mix.lock`` travels with its sources), so a recorded
release's manifest says what that release ran, not what the working tree says today.

The document is built with cyclonedx-python-lib's model and serializer and validated against the schema
the library ships; nothing here writes the format by hand. The library is imported inside the functions
that need it: ``inv --list`` must not pay for it.
"""

from __future__ import annotations

import base64
import json
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nixfly import nix, nixhash
from nixfly.errors import NixflyError
from nixfly.runner import Runner

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom
    from packageurl import PackageURL

# CycloneDX property taxonomy, namespace ``nix`` (cyclonedx-property-taxonomy, nix.md).
STORE_PATH = "nix:narinfo:store_path"
NAR_HASH = "nix:narinfo:nar_hash"
NAR_SIZE = "nix:narinfo:nar_size"
# Where lock files sit inside a store path of the closure: at its top or one directory down
# (``ai-server-node_modules/bun.lock``, ``ai-server/ai-server/bun.lock``).
LOCK_GLOBS = ("{name}", "*/{name}")
# A nixpacks release has no closure here (Fly's builder makes it): its SBOM names what nixfly does know.
BUILDER = "nixfly:builder"
NIXPACKS_CONFIG = "nixfly:nixpacks:config"
NIXPACKS_VERSION = "nixfly:nixpacks:version"
REVISION = "nixfly:git:revision"
LOCK_FILE = "nixfly:lock_file"
# The checkout's lock files a nixpacks build installs from (the npm and hex packages of the issue).
CHECKOUT_LOCKS = ("ai-server/bun.lock", "web/mix.lock")
# nix store diff-closures strips an output name from a store name before DrvName: NixOS/nix
# src/nix/diff-closures.cc, getClosureInfo ("Unfortunately this is ambiguous").
OUTPUT_SUFFIX = re.compile(r"(.*)-([a-z]+|lib32|lib64)")


@dataclass(frozen=True)
class StorePath:
    """One path of a closure, as ``nix path-info --json`` describes it."""

    path: str
    nar_hash: str
    nar_size: int
    references: tuple[str, ...]

    @property
    def full_name(self) -> str:
        """Without the hash: ``/nix/store/<hash>-openssl-3.0.14-bin`` → ``openssl-3.0.14-bin``."""
        return store_name(self.path)

    @property
    def package(self) -> tuple[str, str]:
        """(name, version) of the package this path belongs to (see ``package_of``)."""
        return package_of(self.full_name)


@dataclass(frozen=True)
class Package:
    """A language package pinned by a lock file inside the closure."""

    ecosystem: str  # "npm" or "hex": the purl type
    name: str  # npm scoped names keep their scope: "@scope/name"
    version: str

    @property
    def purl(self) -> PackageURL:
        from packageurl import PackageURL

        namespace, _, name = self.name.rpartition("/")
        return PackageURL(type=self.ecosystem, namespace=namespace or None, name=name, version=self.version)


@dataclass(frozen=True)
class Manifest:
    """A closure and its language packages: what an SBOM holds and what a diff compares."""

    root: str
    paths: dict[str, StorePath]
    # store path holding lock files → the packages they pin; for a nixpacks build, the checkout's lock file
    locks: dict[str, tuple[Package, ...]]
    # A build nixfly did not see (nixpacks): the properties of the BOM's subject (builder, config, version,
    # revision); empty for a closure.
    build: tuple[tuple[str, str], ...] = ()

    @property
    def packages(self) -> tuple[Package, ...]:
        """Every language package of the closure, once."""
        found = {package for pinned in self.locks.values() for package in pinned}
        return tuple(sorted(found, key=lambda p: (p.ecosystem, p.name, p.version)))

    @property
    def nar_size(self) -> int:
        return sum(p.nar_size for p in self.paths.values())


# --- names --------------------------------------------------------------------------------------------------
def store_name(path: str) -> str:
    base = path.rstrip("/").rsplit("/", 1)[-1]
    digest, dash, name = base.partition("-")
    return name if dash and len(digest) == 32 else base


def split_name(name: str) -> tuple[str, str]:
    """Nix's ``DrvName`` (src/libstore/names.cc): the version starts after the first dash that is not
    followed by a letter. ``hello-2.12.1`` → (hello, 2.12.1); ``start-oneshot`` → (start-oneshot, "")."""
    for i, char in enumerate(name[:-1]):
        # Nix's isalpha in the C locale: ASCII letters only.
        if char == "-" and name[i + 1] not in string.ascii_letters:
            return name[:i], name[i + 1 :]
    return name, ""


def _components(version: str) -> list[str]:
    """Nix's nextComponent: runs of digits, or runs of other characters, split at dots and dashes."""
    return re.findall(r"[0-9]+|[^0-9.-]+", version)


def _component_lt(a: str, b: str) -> bool:
    """Nix's componentsLT (src/libstore/names.cc): numbers by value; "" and "pre" before anything; a
    word before a number (``2.3a`` < ``2.3.1``); words by their text."""
    if a.isdigit() and b.isdigit():
        return int(a) < int(b)
    if a == "" and b.isdigit():
        return True
    if a == "pre" and b != "pre":
        return True
    if b == "pre":
        return False
    if b.isdigit():
        return True
    if a.isdigit():
        return False
    return a < b


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1, ordering versions the way Nix does (``nix-env --upgrade``, compareVersions)."""
    left, right = _components(a), _components(b)
    for i in range(max(len(left), len(right))):
        x = left[i] if i < len(left) else ""
        y = right[i] if i < len(right) else ""
        if _component_lt(x, y):
            return -1
        if _component_lt(y, x):
            return 1
    return 0


def package_of(name: str) -> tuple[str, str]:
    """(name, version) of a store name, its output suffix dropped as ``nix store diff-closures`` does
    (``glibc-2.39-52-bin`` → glibc 2.39-52) — but only when a version is left: diff-closures would also
    cut ``start-oneshot`` to ``start``, which names nothing."""
    match = OUTPUT_SUFFIX.fullmatch(name)
    if match:
        pname, version = split_name(match.group(1))
        if version:
            return pname, version
    return split_name(name)


# --- nix path-info ------------------------------------------------------------------------------------------
def parse_path_info(data: Any) -> dict[str, StorePath]:
    """The closure in ``nix path-info --json --recursive``'s output.

    Nix before 2.19 prints a list of objects, each with its ``path`` (and ``"valid": false`` for a path
    that is not in the store); 2.19 and later print an object keyed by path, ``null`` for an invalid one
    (NixOS/nix src/nix/path-info.cc, pathInfoToJSON), to which the newest add top-level ``version`` and
    ``storeDir``. Their ``--json-format 2`` nests the map under ``info``, keyed and referenced by base name,
    with ``narHash`` as ``{algorithm, format: base16, hash}`` (release note "JSON format changes for store
    path info"). Every shape gives the same result.
    """
    store_dir = "/nix/store"
    if isinstance(data, dict) and isinstance(data.get("info"), dict):
        store_dir = str(data.get("storeDir") or store_dir)
        data = data["info"]
    if isinstance(data, list):
        entries = {e.get("path"): e for e in data if isinstance(e, dict) and e.get("valid", True)}
    elif isinstance(data, dict):
        entries = dict(data)
    else:
        raise NixflyError("nix path-info --json printed neither a list nor an object")

    def full(path: str) -> str:
        return path if path.startswith("/") else f"{store_dir}/{path}"

    closure: dict[str, StorePath] = {}
    for key, entry in entries.items():
        if not isinstance(key, str) or not isinstance(entry, dict):
            continue  # an invalid path (null), or the top-level version/storeDir
        path = full(key)
        nar_hash = entry.get("narHash", "")
        if isinstance(nar_hash, dict):
            nar_hash = f"{nar_hash.get('algorithm', '')}:{nar_hash.get('hash', '')}"
        closure[path] = StorePath(
            path=path,
            nar_hash=str(nar_hash),
            nar_size=int(entry.get("narSize", 0)),
            references=tuple(sorted(full(r) for r in entry.get("references", ()) if full(r) != path)),
        )
    return closure


def read_closure(runner: Runner, store_path: str) -> dict[str, StorePath]:
    """``store_path``'s closure from the local store; a read, so it runs in a dry-run too."""
    result = runner.run(
        nix.argv("path-info", "--json", "--recursive", store_path),
        mutates=False,
        quiet=True,
        hint=f"{store_path} must be in this machine's Nix store (build it, or `nix copy` it here)",
    )
    try:
        return parse_path_info(json.loads(result.stdout))
    except json.JSONDecodeError:
        raise NixflyError(f"cannot read `nix path-info --json` output for {store_path}") from None


def sha256_hex(nar_hash: str) -> str:
    """A NAR hash as hex, from each encoding Nix has printed: SRI ``sha256-<base64>`` (2.4 to 2.32),
    ``sha256:<base32>`` (older), ``sha256:<base64>`` (the newest's format 1), ``sha256:<hex>`` (format 2)."""
    algo, sep, digest = nar_hash.partition("-")
    if sep and algo == "sha256":
        return base64.b64decode(digest).hex()
    algo, sep, digest = nar_hash.partition(":")
    if not sep or algo != "sha256":
        return ""
    if len(digest) == 52:
        return nixhash.from_base32(digest, 32).hex()
    if len(digest) == 44:
        return base64.b64decode(digest).hex()
    return digest.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", digest) else ""


# --- lock files ---------------------------------------------------------------------------------------------
def npm_packages(text: str) -> list[Package]:
    """The packages a ``bun.lock`` pins (bun's text lockfile: JSON with trailing commas).

    Each ``packages`` entry is ``[ "name@version", registry, {meta}, integrity ]``; workspace, file, link and
    git entries are not registry packages and are left out (their code is in the closure already).
    """
    try:
        data = json.loads(_without_trailing_commas(text))
    except json.JSONDecodeError as exc:
        raise NixflyError(f"bun.lock cannot be read: {exc}", "run `bun install` to rewrite it") from None
    found = set()
    for entry in (data.get("packages") or {}).values():
        if not (isinstance(entry, list) and entry and isinstance(entry[0], str)):
            continue
        name, _, version = entry[0].rpartition("@")
        if name and version and version[0].isdigit():
            found.add(Package("npm", name, version))
    return sorted(found, key=lambda p: (p.name, p.version))


def _without_trailing_commas(text: str) -> str:
    """JSON from bun's JSONC: drop each comma that closes a list or object, never one inside a string."""
    out: list[str] = []
    in_string = escaped = False
    pending = ""
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if pending and not char.isspace():
            if char not in "]}":
                out.append(pending)
            pending = ""
        if char == ",":
            pending = ","
            continue
        in_string = char == '"'
        out.append(char)
    return "".join(out)


HEX_ENTRY = re.compile(r'\{:hex,\s*:"?([A-Za-z0-9_]+)"?,\s*"([^"]+)"')


def hex_packages(text: str) -> list[Package]:
    """The hex packages a ``mix.lock`` pins: ``"name": {:hex, :name, "1.2.3", ...}`` (git deps have no
    version and are left out)."""
    found = {Package("hex", name, version) for name, version in HEX_ENTRY.findall(text)}
    return sorted(found, key=lambda p: (p.name, p.version))


def lock_packages(paths: Iterable[str]) -> dict[str, tuple[Package, ...]]:
    """Per store path of the closure, the npm and hex packages its lock files pin (if any)."""
    locks: dict[str, tuple[Package, ...]] = {}
    readers = {"bun.lock": npm_packages, "mix.lock": hex_packages}
    for path in paths:
        root = Path(path)
        if not root.is_dir():
            continue
        found: set[Package] = set()
        for lock_name, reader in readers.items():
            for pattern in LOCK_GLOBS:
                for lock in root.glob(pattern.format(name=lock_name)):
                    found.update(reader(lock.read_text()))
        if found:
            locks[path] = tuple(sorted(found, key=lambda p: (p.ecosystem, p.name, p.version)))
    return locks


def nixpacks_manifest(root: Path, app: str, config: str, version: str, revision: str) -> Manifest:
    """What a nixpacks release ships, as far as this checkout knows: Fly's builder makes the image from it
    (no closure here), so the manifest holds the npm and hex packages its lock files pin, the nixpacks
    config (by file and SHA-256) and version, and the git revision. ``nixpacks:<app>@<revision>`` is
    its subject."""
    import hashlib

    readers = {"bun.lock": npm_packages, "mix.lock": hex_packages}
    locks: dict[str, tuple[Package, ...]] = {}
    for name in CHECKOUT_LOCKS:
        lock = root / name
        if lock.is_file():
            pinned = readers[lock.name](lock.read_text())
            locks[name] = tuple(sorted(pinned, key=lambda p: (p.ecosystem, p.name, p.version)))
    config_path = root / config
    digest = hashlib.sha256(config_path.read_bytes()).hexdigest() if config_path.is_file() else ""
    build = {
        BUILDER: "nixpacks",
        NIXPACKS_CONFIG: f"{config} sha256:{digest}" if digest else config,
        NIXPACKS_VERSION: version,
        REVISION: revision,
    }
    return Manifest(f"nixpacks:{app}@{revision}", {}, locks, tuple(sorted(build.items())))


def manifest_of(runner: Runner, store_path: str) -> Manifest:
    """The manifest of a closure in this machine's store."""
    paths = read_closure(runner, store_path)
    return Manifest(store_path, paths, lock_packages(paths))


# --- CycloneDX ----------------------------------------------------------------------------------------------
def to_bom(manifest: Manifest) -> Bom:
    """The manifest as a CycloneDX model: the root closure path is the BOM's subject (metadata.component)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType

    bom = Bom()
    if manifest.build:
        return _build_bom(bom, manifest)
    made: dict[str, Component] = {}
    for info in sorted(manifest.paths.values(), key=lambda p: p.path):
        name, version = split_name(info.full_name)
        hexdigest = sha256_hex(info.nar_hash)
        component = Component(
            name=name,
            version=version or None,
            type=ComponentType.APPLICATION if info.path == manifest.root else ComponentType.LIBRARY,
            bom_ref=info.path,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=hexdigest)] if hexdigest else [],
            properties=[
                Property(name=STORE_PATH, value=info.path),
                Property(name=NAR_HASH, value=info.nar_hash),
                Property(name=NAR_SIZE, value=str(info.nar_size)),
            ],
        )
        made[info.path] = component
        if info.path == manifest.root:
            bom.metadata.component = component
        else:
            bom.components.add(component)
    pinned: dict[Package, Component] = {}
    for package in manifest.packages:
        purl = package.purl
        pinned[package] = Component(name=package.name, version=package.version, purl=purl, bom_ref=str(purl))
        bom.components.add(pinned[package])
    for info in manifest.paths.values():
        # A store path depends on what it references, and on the packages its lock files pin.
        depends = [made[r] for r in info.references if r in made]
        depends += [pinned[p] for p in manifest.locks.get(info.path, ())]
        bom.register_dependency(made[info.path], depends)
    return bom


def _build_bom(bom: Bom, manifest: Manifest) -> Bom:
    """A build nixfly did not see (nixpacks): the build is the subject, each lock file a component that
    depends on the packages it pins."""
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    name, _, revision = manifest.root.partition("@")
    subject = Component(
        name=name,
        version=revision or None,
        type=ComponentType.APPLICATION,
        bom_ref=manifest.root,
        properties=[Property(name=key, value=value) for key, value in manifest.build],
    )
    bom.metadata.component = subject
    pinned: dict[Package, Component] = {}
    for package in manifest.packages:
        purl = package.purl
        pinned[package] = Component(name=package.name, version=package.version, purl=purl, bom_ref=str(purl))
        bom.components.add(pinned[package])
    files = []
    for lock, packages in sorted(manifest.locks.items()):
        file = Component(
            name=lock,
            type=ComponentType.FILE,
            bom_ref=f"file:{lock}",
            properties=[Property(name=LOCK_FILE, value=lock)],
        )
        bom.components.add(file)
        bom.register_dependency(file, [pinned[p] for p in packages])
        files.append(file)
    bom.register_dependency(subject, files)
    return bom


def to_json(manifest: Manifest) -> str:
    """The manifest as CycloneDX 1.6 JSON, validated against the schema cyclonedx-python-lib ships."""
    from cyclonedx.output.json import JsonV1Dot6
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = JsonV1Dot6(to_bom(manifest)).output_as_string(indent=2)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        # The library's message quotes the whole schema: its first line says what is wrong.
        raise NixflyError(f"the SBOM does not validate as CycloneDX 1.6: {str(error).splitlines()[0]}")
    return text


def from_json(text: str, source: str) -> Manifest:
    """A manifest read back from a CycloneDX JSON document (one nixfly wrote, or any with nix properties)."""
    from cyclonedx.model.bom import Bom

    try:
        bom = Bom.from_json(json.loads(text))  # type: ignore[attr-defined]
    except (ValueError, KeyError, TypeError) as exc:
        raise NixflyError(f"{source} is not a CycloneDX JSON document: {exc}") from None
    components = list(bom.components)
    if bom.metadata.component is not None:
        components.append(bom.metadata.component)
    depends = {str(d.ref): [str(x.ref) for x in d.dependencies] for d in bom.dependencies}
    packages = {
        str(c.bom_ref): Package(c.purl.type, c.name, c.version or "")
        for c in components
        if c.purl is not None and c.purl.type in ("npm", "hex")
    }
    root = bom.metadata.component
    build = tuple((p.name, p.value) for p in root.properties) if root is not None else ()
    if dict(build).get(BUILDER) == "nixpacks" and root is not None:
        return _build_manifest(components, depends, packages, str(root.bom_ref), build)
    paths: dict[str, StorePath] = {}
    locks: dict[str, tuple[Package, ...]] = {}
    for component in components:
        props = {p.name: p.value for p in component.properties}
        if STORE_PATH not in props:
            continue
        path, refs = props[STORE_PATH], depends.get(str(component.bom_ref), [])
        paths[path] = StorePath(
            path=path,
            nar_hash=props.get(NAR_HASH, ""),
            nar_size=int(props.get(NAR_SIZE, "0") or 0),
            references=tuple(sorted(r for r in refs if r not in packages)),
        )
        pinned = sorted(
            (packages[r] for r in refs if r in packages), key=lambda p: (p.ecosystem, p.name, p.version)
        )
        if pinned:
            locks[path] = tuple(pinned)
    if root is None or not paths:
        raise NixflyError(f"{source} names no Nix store paths: not an SBOM nixfly can compare")
    return Manifest({p.name: p.value for p in root.properties}.get(STORE_PATH, ""), paths, locks)


def _build_manifest(
    components: list[Any],
    depends: dict[str, list[str]],
    packages: dict[str, Package],
    subject: str,
    build: tuple[tuple[str, str], ...],
) -> Manifest:
    """A nixpacks release's manifest read back (``_build_bom``'s document)."""
    locks: dict[str, tuple[Package, ...]] = {}
    for component in components:
        props = {p.name: p.value for p in component.properties}
        if LOCK_FILE in props:
            refs = depends.get(str(component.bom_ref), [])
            pinned = sorted(
                (packages[r] for r in refs if r in packages), key=lambda p: (p.ecosystem, p.name, p.version)
            )
            locks[props[LOCK_FILE]] = tuple(pinned)
    return Manifest(subject, {}, locks, tuple(sorted(build)))
