import json
import os

import pytest
from helpers.fakes import ScriptedRunner, checkout, settings

from nixfly import manifests, sbom
from nixfly.errors import NixflyError
from nixfly.runner import Completed

ONE = f"/nix/store/{'1' * 32}-oneshot-integrated-0.1.0"
TWO = f"/nix/store/{'2' * 32}-oneshot-integrated-0.1.0"


@pytest.fixture
def s(tmp_path):
    return settings(checkout(tmp_path / "repo"))


def record(s, *paths, current=0):
    """Generations as `inv deploy --target local` leaves them: profile-N-link → store path."""
    directory = manifests.profile_dir(s)
    directory.mkdir(parents=True)
    for number, path in enumerate(paths, start=1):
        os.symlink(path, directory / f"profile-{number}-link")
    if current:
        os.symlink(f"profile-{current}-link", directory / "profile")


def runner():
    def closure(call):
        path = call.argv[-1]
        return Completed(
            (), 0, json.dumps([{"path": path, "narHash": "", "narSize": 7, "references": []}]), ""
        )

    fake = ScriptedRunner()
    fake.answer("path-info", with_=closure)
    return fake


def test_recorded_releases_and_the_live_one(s):
    record(s, ONE, TWO, current=1)
    assert manifests.generations(s) == {1: ONE, 2: TWO}
    assert manifests.live(s) == (1, ONE)
    assert manifests.release_path(s, 2) == TWO
    assert manifests.default_from(s, runner()).root == ONE


def test_a_release_that_is_not_recorded_names_those_that_are(s):
    record(s, ONE, TWO)
    with pytest.raises(
        NixflyError, match=r"no release 5 of oneshot is recorded here \(local releases: 1, 2\)"
    ):
        manifests.release_path(s, 5)
    assert manifests.live(s) is None


def test_nothing_live_asks_for_from(s):
    with pytest.raises(NixflyError, match="nothing of oneshot is recorded as live") as info:
        manifests.default_from(s, runner())
    assert "--from" in (info.value.hint or "")


def test_no_build_yet_says_to_build(s):
    with pytest.raises(NixflyError, match="no result for mode integrated") as info:
        manifests.working_tree(s)
    assert info.value.hint == "run `inv build --mode integrated` first"


def test_every_kind_of_name_resolves(s):
    record(s, ONE, TWO, current=2)
    os.symlink(TWO, s.root / "result")
    saved = s.root / "v1.json"
    saved.write_text(
        sbom.to_json(sbom.Manifest(ONE, sbom.parse_path_info([{"path": ONE, "narSize": 7}]), {}))
    )
    fake = runner()
    assert manifests.resolve(s, fake, "v1").root == ONE
    assert manifests.resolve(s, fake, "2").root == TWO
    assert manifests.resolve(s, fake, TWO).root == TWO
    assert manifests.resolve(s, fake, "result").root == TWO
    assert manifests.resolve(s, fake, "v1.json").root == ONE
    with pytest.raises(NixflyError, match="names no release, store path or SBOM file"):
        manifests.resolve(s, fake, "nowhere")
