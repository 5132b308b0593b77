"""Builder of the shim's dockerTools.buildLayeredImage: writes a docker-archive (.tar[.gz]).

Runs inside a Nix build (stdlib only, host /usr/bin/python3). Inputs come from the
environment, set by pkgs.nix:
  out, compressor (none|gz), contents, configJson, imageName, imageTag, created,
  extraCommands, maxLayers,
  dockerArchitecture, and the closure-N files written by exportReferencesGraph.

Layout (what `docker load` and `skopeo ... docker-archive:` read):
  manifest.json            [{"Config": "<sha>.json", "RepoTags": [...], "Layers": [...]}]
  <sha>.json               image config; rootfs.diff_ids = sha256 of each layer.tar
  <sha>/layer.tar          one per layer, uncompressed
Layers: one per closure store path (sorted by path; past maxLayers-1 they share the last
store layer), then the customisation layer: `contents` linked at / (like nixpkgs'
symlinkJoin) plus whatever extraCommands creates there. Deterministic: sorted entries,
mtime from `created`, uid/gid 0, gzip (when asked for) without a timestamp.
"""

import contextlib
import datetime
import glob
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

BUILD_DIR = os.getcwd()


def closure_paths() -> list[str]:
    """Store paths listed in the exportReferencesGraph files (registration format:
    path, deriver, number of references, the references; repeated)."""
    paths = set()
    for name in glob.glob(os.path.join(BUILD_DIR, "closure-*")):
        with open(name) as graph:
            lines = graph.read().splitlines()
        i = 0
        while i < len(lines):
            paths.add(lines[i])
            i += 3 + int(lines[i + 2])
    return sorted(paths)


def tar_info(path: str, arcname: str, mtime: int) -> tarfile.TarInfo:
    st = os.lstat(path)
    info = tarfile.TarInfo(arcname)
    info.mode = st.st_mode & 0o7777
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if os.path.islink(path):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif os.path.isdir(path):
        info.type = tarfile.DIRTYPE
    else:  # regular file; hard links inside the store are written as plain copies
        info.size = st.st_size
    return info


def add_tree(tar: tarfile.TarFile, root: str, arcname: str, mtime: int) -> None:
    """Add root (file, symlink or directory) recursively, entries in sorted order."""
    info = tar_info(root, arcname, mtime)
    if info.isreg():
        with open(root, "rb") as data:
            tar.addfile(info, data)
        return
    tar.addfile(info)
    if info.isdir():
        for entry in sorted(os.listdir(root)):
            add_tree(tar, os.path.join(root, entry), f"{arcname}/{entry}", mtime)


def add_dir_entry(tar: tarfile.TarFile, arcname: str, mode: int, mtime: int) -> None:
    info = tarfile.TarInfo(arcname)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = mtime
    info.uname = info.gname = "root"
    tar.addfile(info)


def write_layer(name: str, fill) -> tuple[str, str]:
    """Write layer tar `name` in the build dir with fill(tar); return (path, sha256 hex)."""
    path = os.path.join(BUILD_DIR, name)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        fill(tar)
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return path, digest.hexdigest()


def link_contents(root: str, sources: list[str]) -> None:
    """Like symlinkJoin/lndir: real directories, symlinks to every file (first one wins)."""
    for source in sources:
        for directory, dirnames, filenames in os.walk(source):
            relative = os.path.relpath(directory, source)
            target_dir = os.path.normpath(os.path.join(root, relative))
            os.makedirs(target_dir, exist_ok=True)
            # symlinks to directories are linked, not descended into
            for entry in sorted(dirnames):
                if os.path.islink(os.path.join(directory, entry)):
                    filenames.append(entry)
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(directory, d))]
            for entry in filenames:
                target = os.path.join(target_dir, entry)
                if not os.path.lexists(target):
                    os.symlink(os.path.join(directory, entry), target)


def main() -> None:
    env = os.environ
    out = env["out"]
    created = env["created"]
    mtime = int(datetime.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
    max_layers = int(env["maxLayers"])
    contents = env["contents"].split()
    tag = env["imageTag"] or os.path.basename(out).split("-", 1)[0]

    store_paths = [p for p in closure_paths() if p != env["configJson"]]
    store_layer_count = max(1, max_layers - 1)
    groups = [[p] for p in store_paths[: store_layer_count - 1]]
    if store_paths[store_layer_count - 1 :]:
        groups.append(store_paths[store_layer_count - 1 :])

    layers = []  # (path of layer.tar, sha256 hex, description)
    for index, group in enumerate(groups):

        def fill(tar, group=group):
            add_dir_entry(tar, "nix", 0o555, mtime)
            add_dir_entry(tar, "nix/store", 0o555, mtime)
            for store_path in group:
                add_tree(tar, store_path, store_path.lstrip("/"), mtime)

        path, digest = write_layer(f"layer-{index}.tar", fill)
        layers.append((path, digest, "store paths: " + " ".join(group)))

    customisation = os.path.join(BUILD_DIR, "customisation")
    os.mkdir(customisation)
    link_contents(customisation, contents)
    subprocess.run(["bash", "-euo", "pipefail", "-c", env["extraCommands"]], cwd=customisation, check=True)

    def fill_customisation(tar):
        for entry in sorted(os.listdir(customisation)):
            add_tree(tar, os.path.join(customisation, entry), entry, mtime)

    path, digest = write_layer("layer-customisation.tar", fill_customisation)
    layers.append((path, digest, "customisation layer: contents and extraCommands"))

    with open(env["configJson"]) as config_file:
        container_config = json.load(config_file)
    image_config = {
        "architecture": env["dockerArchitecture"],
        "os": "linux",
        "created": created,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest}" for _, digest, _ in layers]},
        "history": [{"created": created, "comment": description} for _, _, description in layers],
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [
        {
            "Config": config_name,
            "RepoTags": [f"{env['imageName']}:{tag}"],
            "Layers": [f"{digest}/layer.tar" for _, digest, _ in layers],
        }
    ]

    with open(out, "wb") as raw, contextlib.ExitStack() as stack:
        sink = raw
        if env["compressor"] == "gz":
            sink = stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
        with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as archive:

            def add_bytes(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = mtime
                info.mode = 0o444
                archive.addfile(info, io.BytesIO(data))

            seen = set()
            for layer_path, digest, _ in layers:
                if digest in seen:  # identical layers are stored once
                    continue
                seen.add(digest)
                add_dir_entry(archive, digest, 0o555, mtime)
                info = archive.gettarinfo(layer_path, arcname=f"{digest}/layer.tar")
                info.mtime, info.mode, info.uid, info.gid = mtime, 0o444, 0, 0
                info.uname = info.gname = "root"
                with open(layer_path, "rb") as data:
                    archive.addfile(info, data)
            add_bytes(config_name, config_bytes)
            add_bytes("manifest.json", json.dumps(manifest, sort_keys=True).encode())
    for layer_path, _, _ in layers:
        os.remove(layer_path)
    shutil.rmtree(customisation)
    print(f"wrote {out}: {env['imageName']}:{tag}, {len(layers)} layers")


if __name__ == "__main__":
    main()
