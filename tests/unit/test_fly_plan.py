"""nixfly.fly.plan: the Fly deploy's decisions, as functions of what was observed."""

from __future__ import annotations

import pytest
from helpers.fakes import release

from nixfly.errors import CommandError, NixflyError
from nixfly.fly import plan
from nixfly.flyctl import ReleaseUnhealthy, Volume

# --- what is live -------------------------------------------------------------------------------------------


def test_live_release_is_the_newest_complete_one_whatever_the_order():
    releases = [release(2), release(4, "failed"), release(3), release(5, "running")]
    assert plan.live_release(releases) == release(3)
    assert plan.live_release([release(1, "succeeded")]) == release(1, "succeeded")


def test_no_live_release_before_one_completed():
    assert plan.live_release([]) is None
    assert plan.live_release([release(1, "failed"), release(2, "running")]) is None


# --- which volume to create ---------------------------------------------------------------------------------


def volume(name: str, region: str = "iad", vid: str = "vol_1") -> Volume:
    return Volume(vid, name, region, "created", None)


def test_a_volume_of_that_name_in_any_region_means_create_none():
    found = [volume("other", vid="vol_a"), volume("oneshot_data", "ams", "vol_b")]
    assert plan.existing_volume(found, "oneshot_data") == found[1]


def test_only_an_exact_name_counts():
    assert plan.existing_volume([volume("oneshot_data_old"), volume("Oneshot_data")], "oneshot_data") is None
    assert plan.existing_volume([], "oneshot_data") is None


# --- whether to deploy --------------------------------------------------------------------------------------


def digest(**over: object) -> str:
    values: dict = {
        "builder": "nixpacks",
        "store_path": "/nix/store/a",
        "image_ref": "",
        "strategy": "",
        "files": [b"app = 'x'"],
        "prints": {"TOKEN": "f1"},
        **over,
    }
    return plan.inputs_digest(**values)


def test_inputs_digest_is_stable_and_changes_with_every_input():
    assert digest() == digest()
    assert digest(prints={"TOKEN": "f1"}) == digest(prints={"TOKEN": "f1"})
    changed = [
        digest(builder="image"),
        digest(store_path="/nix/store/b"),
        digest(image_ref="registry.fly.io/a:nix-1"),
        digest(strategy="immediate"),
        digest(files=[b"app = 'y'"]),
        digest(files=[b"app = 'x'", b"nixpacks"]),
        digest(prints={"TOKEN": "f2"}),
        digest(prints={"TOKEN": "f1", "OTHER": "f3"}),
    ]
    assert len({digest(), *changed}) == len(changed) + 1


def test_inputs_digest_does_not_depend_on_the_order_of_fingerprints():
    assert digest(prints={"A": "1", "B": "2"}) == digest(prints={"B": "2", "A": "1"})


def test_first_deploy_always_deploys():
    decision = plan.deploy_decision(None, {}, "d", force=False)
    assert decision == plan.DeployDecision(True, "first deploy")


def test_nothing_changed_skips_the_deploy():
    decision = plan.deploy_decision(release(3), {"version": 3, "inputs": "d"}, "d", force=False)
    assert not decision.deploy
    assert decision.reason == "v3 is live and nothing changed (--force redeploys)"


def test_force_deploys_even_when_nothing_changed():
    decision = plan.deploy_decision(release(3), {"version": 3, "inputs": "d"}, "d", force=True)
    assert decision == plan.DeployDecision(True, "--force")


def test_changed_inputs_deploy():
    decision = plan.deploy_decision(release(3), {"version": 3, "inputs": "old"}, "new", force=False)
    assert decision == plan.DeployDecision(True, "the closure, config or secrets changed")


@pytest.mark.parametrize("record", [{}, {"version": 2, "inputs": "d"}, {"inputs": "d"}])
def test_a_live_release_nixfly_did_not_record_deploys(record):
    """Someone else deployed (or the record is gone): the inputs cannot be compared, so deploy."""
    decision = plan.deploy_decision(release(3), record, "d", force=False)
    assert decision.deploy
    assert decision.reason == "v3 is live but nixfly did not deploy it from this checkout"


# --- when to roll back, and to what -------------------------------------------------------------------------


def failed() -> NixflyError:
    return NixflyError("boom")


@pytest.mark.parametrize(
    "step", ["preflight", "lock", "build", "smoke", "bundle", "app", "volume", "secrets"]
)
def test_a_failure_before_deploy_undoes_nothing(step):
    assert plan.recovery(step, failed(), released=True, rollback=True, previous=release(1)) == "nothing"


def test_a_deploy_that_made_no_release_undoes_nothing():
    error = CommandError("flyctl deploy failed", kind="failed", argv=["flyctl", "deploy"])
    assert plan.recovery("deploy", error, released=False, rollback=True, previous=release(1)) == "nothing"


def test_a_deploy_that_made_a_release_rolls_back_to_the_previous_one():
    error = CommandError("flyctl deploy failed", kind="failed", argv=["flyctl", "deploy"])
    assert plan.recovery("deploy", error, released=True, rollback=True, previous=release(1)) == "roll back"


def test_unhealthy_release_rolls_back_even_if_fly_was_not_asked():
    """flyctl's 'waiting for health checks' always means a release exists."""
    error = ReleaseUnhealthy("timeout reached waiting for health checks")
    assert plan.recovery("deploy", error, released=False, rollback=True, previous=release(1)) == "roll back"


def test_a_failed_verify_rolls_back():
    assert plan.recovery("verify", failed(), released=True, rollback=True, previous=release(7)) == "roll back"


def test_no_rollback_keeps_the_bad_release():
    assert plan.recovery("verify", failed(), released=True, rollback=False, previous=release(1)) == "keep"


def test_a_first_deploy_has_nothing_to_go_back_to():
    assert plan.recovery("verify", failed(), released=True, rollback=True, previous=None) == "first"


def test_no_rollback_wins_over_first_deploy():
    assert plan.recovery("verify", failed(), released=True, rollback=False, previous=None) == "keep"


def test_rollback_goes_to_the_newest_complete_release_with_an_image_before_the_current():
    # v4 completed but has no image to redeploy; v3 failed.
    releases = [release(5, "failed"), release(4, image=""), release(3, "failed"), release(2), release(1)]
    current, chosen = plan.rollback_choice(releases, 0)
    assert (current.version, chosen.version) == (5, 2)


def test_rollback_to_a_named_version():
    current, chosen = plan.rollback_choice([release(1), release(3), release(2, "failed")], 2)
    assert (current.version, chosen.version) == (3, 2)


def test_rollback_refuses_what_it_cannot_do():
    with pytest.raises(NixflyError, match="has no releases"):
        plan.rollback_choice([], 0)
    with pytest.raises(NixflyError, match="there is no release v9"):
        plan.rollback_choice([release(1), release(2)], 9)
    with pytest.raises(NixflyError, match="release v1 has no image"):
        plan.rollback_choice([release(1, image=""), release(2)], 1)
    with pytest.raises(NixflyError, match="no earlier healthy release"):
        plan.rollback_choice([release(1, "failed"), release(2)], 0)
