"""nixfly.flyctlargv: every flyctl command line nixfly runs, compared as a string (Kamal's commands tests).

No runner and no simulator: each builder is a pure function of plain values. That flyctl takes these flags is
cited beside each builder (flyctl's internal/command/… and the first release with the flag).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from nixfly import flyctl, flyctlargv


def line(argv: list[str]) -> str:
    return " ".join(argv)


# --- reads --------------------------------------------------------------------------------------------------


def test_version():
    assert line(flyctlargv.version()) == "version --json"


def test_whoami():
    assert line(flyctlargv.whoami()) == "auth whoami --json"


def test_status():
    assert line(flyctlargv.status("shop")) == "status --app shop --json"


def test_volumes_list():
    assert line(flyctlargv.volumes_list("shop")) == "volumes list --app shop --json"


def test_secrets_list():
    assert line(flyctlargv.secrets_list("shop")) == "secrets list --app shop --json"


def test_releases():
    assert line(flyctlargv.releases("shop")) == "releases --app shop --json"


def test_apps_list():
    assert line(flyctlargv.apps_list()) == "apps list --json"


def test_platform_regions():
    assert line(flyctlargv.platform_regions()) == "platform regions --json"


def test_checks_list():
    assert line(flyctlargv.checks_list("shop")) == "checks list --app shop --json"


def test_logs_do_not_follow():
    assert line(flyctlargv.logs("shop")) == "logs --app shop --no-tail"


def test_auth_token():
    assert line(flyctlargv.auth_token()) == "auth token"


# Every JSON read, as nixfly.flyctl makes it: each command has a shape its answer is checked against.
JSON_READS = {
    "version": flyctlargv.version(),
    "whoami": flyctlargv.whoami(),
    "status": flyctlargv.status("a"),
    "volumes_list": flyctlargv.volumes_list("a"),
    "secrets_list": flyctlargv.secrets_list("a"),
    "releases": flyctlargv.releases("a"),
    "apps_list": flyctlargv.apps_list(),
    "platform_regions": flyctlargv.platform_regions(),
    "checks_list": flyctlargv.checks_list("a"),
}


def test_each_json_read_has_the_shape_of_its_command():
    assert {flyctlargv.command(argv) for argv in JSON_READS.values()} == set(flyctl.SHAPES)
    assert all(argv[-1] == "--json" for argv in JSON_READS.values())


def test_every_json_read_of_flyctl_is_listed_here():
    """A read added to nixfly/flyctl.py without a shape would fail at its first answer: list it above."""
    source = Path(flyctl.__file__).read_text()
    assert set(re.findall(r"_json\(flyctlargv\.(\w+)\(", source)) == set(JSON_READS)


def test_command_is_the_words_before_the_first_flag():
    assert flyctlargv.command(["volumes", "list", "--app", "a", "--json"]) == "volumes list"
    assert flyctlargv.command(["version", "--json"]) == "version"
    assert flyctlargv.command([]) == ""


# --- changes ------------------------------------------------------------------------------------------------


def test_apps_create_without_an_org_lets_flyctl_pick_the_personal_one():
    assert line(flyctlargv.apps_create("shop")) == "apps create shop"


def test_apps_create_in_an_org():
    assert line(flyctlargv.apps_create("shop", "acme")) == "apps create shop --org acme"


def test_apps_destroy():
    assert line(flyctlargv.apps_destroy("shop-pr-7")) == "apps destroy shop-pr-7 --yes"


def test_volumes_create():
    argv = flyctlargv.volumes_create("shop", "data", "iad", 3)
    assert line(argv) == "volumes create data --app shop --region iad --size 3 --yes"


def test_volumes_destroy():
    assert line(flyctlargv.volumes_destroy("shop", "vol_1")) == "volumes destroy vol_1 --app shop --yes"


def test_machine_destroy_takes_every_id_at_once():
    argv = flyctlargv.machine_destroy("shop", ["m1", "m2"])
    assert line(argv) == "machine destroy m1 m2 --app shop --force"


def test_scale_count_caps_the_region_at_the_count():
    argv = flyctlargv.scale_count("shop", group="web", region="ams", count=2)
    assert line(argv) == (
        "scale count 2 --app shop --process-group web --region ams --max-per-region 2 --yes"
    )


def test_scale_count_with_new_volumes():
    argv = flyctlargv.scale_count("shop", group="app", region="iad", count=0, new_volumes=True)
    assert line(argv) == (
        "scale count 0 --app shop --process-group app --region iad --max-per-region 0 --yes"
        " --with-new-volumes"
    )


@pytest.mark.parametrize(("stage", "expected"), [(True, " --stage"), (False, "")])
def test_secrets_import_staged_or_set(stage, expected):
    assert line(flyctlargv.secrets_import("shop", stage=stage)) == f"secrets import --app shop{expected}"


def test_no_secret_value_can_reach_argv():
    """Secret values go on stdin (argv is readable by every local user through /proc): the builder that
    sends them takes no value at all."""
    assert list(inspect.signature(flyctlargv.secrets_import).parameters) == ["app", "stage"]


def test_deploy_an_image():
    argv = flyctlargv.deploy("shop", Path("fly.shop.toml"), image="registry.fly.io/shop@sha256:ab")
    assert (
        line(argv) == "deploy --app shop --config fly.shop.toml --yes --image registry.fly.io/shop@sha256:ab"
    )


def test_deploy_builds_with_nixpacks_without_an_image():
    assert (
        line(flyctlargv.deploy("shop", Path("f.toml")))
        == "deploy --app shop --config f.toml --yes --nixpacks"
    )


def test_rollback_deploys_an_old_image_at_once():
    argv = flyctlargv.deploy("shop", Path("f.toml"), image="reg/shop:v3", strategy="immediate")
    assert line(argv) == "deploy --app shop --config f.toml --yes --image reg/shop:v3 --strategy immediate"


def test_a_preview_deploy_asks_for_one_machine():
    argv = flyctlargv.deploy("shop-pr-7", Path("f.toml"), image="reg/shop:pr", ha=False)
    assert line(argv) == "deploy --app shop-pr-7 --config f.toml --yes --image reg/shop:pr --ha=false"


# --- what depends on the flyctl version: the environment, not argv ------------------------------------------


def test_deploy_asks_every_flyctl_for_its_release_line():
    """FLY_EMIT_RELEASE_JSON exists from v0.4.56; older flyctl ignore it (nixfly then reads ``releases``), so
    it is set whatever the version."""
    assert flyctlargv.deploy_env(image="reg/shop:v3") == {"FLY_EMIT_RELEASE_JSON": "1"}


def test_a_nixpacks_deploy_names_the_modes_nixpacks_config():
    env = flyctlargv.deploy_env(nixpacks_config="nixpacks-ai.toml")
    assert env == {"FLY_EMIT_RELEASE_JSON": "1", "NIXPACKS_CONFIG_FILE": "nixpacks-ai.toml"}


def test_an_image_deploy_builds_nothing_so_names_no_nixpacks_config():
    env = flyctlargv.deploy_env(image="reg/shop:v3", nixpacks_config="nixpacks-ai.toml")
    assert env == {"FLY_EMIT_RELEASE_JSON": "1"}
