"""nixfly.image: the tag that names the content, the archive's layers, and pushing only what is missing."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from helpers.fakes import ScriptedRunner

from nixfly import image
from nixfly.errors import NixflyError

ARCHIVE = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-docker-image-oneshot.tar.gz"


def test_the_tag_is_the_store_hash():
    assert image.tag_for(ARCHIVE) == "nix-0123456789abcdfghijklmnpqrsvwxyz"
    ref = image.reference("registry.fly.io", "oneshot", ARCHIVE)
    assert ref == "registry.fly.io/oneshot:nix-0123456789abcdfghijklmnpqrsvwxyz"


@pytest.mark.parametrize("path", ["/tmp/image.tar.gz", "/nix/store/short-x.tar.gz", "result-image"])
def test_anything_but_a_store_path_is_refused(path):
    with pytest.raises(NixflyError, match="does not look like a Nix store path"):
        image.tag_for(path)


def archive(path, layers):
    with tarfile.open(path, "w") as tar:
        manifest = json.dumps([{"Layers": [name for name, _ in layers]}]).encode()
        for name, data in [("manifest.json", manifest), *layers]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_layers_in_manifest_order_with_sizes(tmp_path):
    found = image.layers(archive(tmp_path / "i.tar", [("b/layer.tar", b"12345"), ("a/layer.tar", b"1")]))
    assert found == [("b/layer.tar", 5), ("a/layer.tar", 1)]


def test_an_archive_without_a_manifest_is_not_an_image(tmp_path):
    path = tmp_path / "i.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    with pytest.raises(NixflyError, match="not a docker-archive"):
        image.layers(str(path))


REF = "registry.fly.io/oneshot:nix-0123456789abcdfghijklmnpqrsvwxyz"


def test_push_uploads_a_missing_tag_with_credentials_in_a_file_only():
    runner = ScriptedRunner(tools=["skopeo"])
    runner.on("inspect", stderr="manifest unknown", code=1).on("copy")
    pushed = image.push(runner, ARCHIVE, REF, "fm2_secret-password")
    assert pushed == image.Pushed(REF, uploaded=True)
    _, copy = runner.calls
    assert copy.argv[:2] == ("skopeo", "copy") and copy.argv[-2:] == (
        f"docker-archive:{ARCHIVE}",
        f"docker://{REF}",
    )
    assert "--dest-tls-verify=true" in copy.argv
    assert not any("fm2_secret-password" in arg for c in runner.calls for arg in c.argv)


def test_a_tag_already_there_is_not_pushed_again_and_its_digest_is_the_manifest_s():
    runner = ScriptedRunner(tools=["skopeo"]).on("inspect", stdout="{}")
    # sha256("{}"): a manifest's digest is the hash of its bytes.
    digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert image.push(runner, ARCHIVE, REF, "pw") == image.Pushed(REF, uploaded=False, digest=digest)
    assert [c.argv[1] for c in runner.calls] == ["inspect"]


def test_pinned_names_the_digest_never_the_tag():
    digest = "sha256:" + "a" * 64
    assert image.pinned(REF, digest) == f"registry.fly.io/oneshot@{digest}"
    assert image.pinned("127.0.0.1:5000/oneshot:nix-1", digest) == f"127.0.0.1:5000/oneshot@{digest}"


def test_a_dry_run_push_inspects_but_uploads_nothing():
    runner = ScriptedRunner(dry_run=True, tools=["skopeo"]).on("inspect", stderr="manifest unknown", code=1)
    assert image.push(runner, ARCHIVE, REF, "pw") == image.Pushed(REF, uploaded=False)
    assert [c.argv[1] for c in runner.calls] == ["inspect"]


class Host:
    def __init__(self):
        self.asked = []

    def build(self, attr, out_link, *, flake="."):
        self.asked.append(("build", attr, out_link, flake))
        return "built"

    def fetch(self, built, here):
        self.asked.append(("fetch", built))


def test_build_on_builds_there_and_fetches_here():
    host = Host()
    built = image.build_on(host, "oci-image-integrated", "result-image", ScriptedRunner(), flake="path:/s")  # type: ignore[arg-type]
    assert built == "built"
    assert host.asked == [("build", "oci-image-integrated", "result-image", "path:/s"), ("fetch", "built")]
    with pytest.raises(NixflyError, match="no image attribute"):
        image.build_on(host, "", "result-image", ScriptedRunner())  # type: ignore[arg-type]


TESTED = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-oneshot-integrated"


def layer(*names, gz=False):
    """A layer tarball holding directory entries ``names`` (gzipped when ``gz``)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if gz else "w") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    return out.getvalue()


@pytest.mark.parametrize("entry", [TESTED[1:], "./" + TESTED[1:], TESTED])
@pytest.mark.parametrize("gz", [False, True])
def test_an_image_holding_the_tested_closure_passes(tmp_path, entry, gz):
    path = archive(
        tmp_path / "i.tar", [("a/layer.tar", layer("nix", gz=gz)), ("b/layer.tar", layer(entry, gz=gz))]
    )
    assert image.holds(path, TESTED)
    image.require_tested(path, TESTED)


def test_an_image_of_another_closure_is_refused(tmp_path):
    other = TESTED.replace("0123", "9999")[1:]
    path = archive(tmp_path / "i.tar", [("a/layer.tar", layer(other, other + "/bin", TESTED[1:] + "-x"))])
    assert not image.holds(path, TESTED)
    with pytest.raises(NixflyError, match="does not hold the tested closure") as info:
        image.require_tested(path, TESTED)
    assert "without --skip-build" in (info.value.hint or "")
