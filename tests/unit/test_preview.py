"""nixfly.preview (names, marker, durations, secrets, fly toml) and nixfly.fly.preview's marker reads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nixfly import config, flytoml
from nixfly.errors import NixflyError
from nixfly.preview import (
    Marker,
    age,
    app_name,
    branch_slug,
    duration,
    parse_marker,
    pr_number,
    prefix,
    preview_secrets,
    preview_toml,
    toml,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT = config.load_preview(None)


def test_pr_numbers_are_positive_whole_numbers():
    assert pr_number("12") == 12
    for bad in ("", "0", "012", "-3", "12a", "1.5", " 12", "\uff11\uff12", "9999999999"):
        with pytest.raises(NixflyError, match="is not a pull request number"):
            pr_number(bad)


def test_names_follow_fly_rules_and_long_branches_get_a_digest():
    assert app_name(DEFAULT, "oneshot", pr=12) == "oneshot-pr-12"
    assert app_name(DEFAULT, "oneshot", branch="Feature/Add_Login!") == "oneshot-feature-add-login"
    assert branch_slug("--ümlaut--") == "mlaut"  # non-ASCII dropped, as launch's sanitizeAppName does
    a = app_name(DEFAULT, "oneshot", branch="feature/" + "x" * 80)
    b = app_name(DEFAULT, "oneshot", branch="feature/" + "x" * 80 + "y")
    assert len(a) == len(b) == 63 and a != b and config.APP_NAME.fullmatch(a)
    with pytest.raises(NixflyError, match="no letters or digits"):
        app_name(DEFAULT, "oneshot", branch="///")
    long = config.load_preview({"preview": {"name": "{app}-" + "p" * 60 + "-{pr}"}})
    with pytest.raises(NixflyError, match=r"\(70 characters, at most 63\)"):
        app_name(long, "oneshot", pr=1)


def test_prefix_is_what_both_templates_start_with():
    assert prefix(DEFAULT, "oneshot") == "oneshot-"
    other = config.load_preview({"preview": {"name": "pr-{pr}-{app}", "branch_name": "pr-b-{branch}"}})
    assert prefix(other, "oneshot") == "pr-"


def test_durations():
    assert duration("7d") == 7 * 86400
    assert duration("36h") == 36 * 3600
    assert duration("2w") == 14 * 86400
    for bad in ("", "7", "d", "0d", "7days", "-1d", "1.5d", "7 d"):
        with pytest.raises(NixflyError, match="is not a duration"):
            duration(bad)
    assert (age(3 * 86400 + 5), age(7200), age(59)) == ("3d", "2h", "0m")


def test_the_marker_round_trips_and_lookalikes_are_not_markers():
    for marker in (Marker(12, 1765000000), Marker(0, 1765000000)):
        assert parse_marker(["OTHER", marker.name]) == marker
    assert Marker(12, 5).name == "NIXFLY_PREVIEW_PR_12_AT_5"
    lookalikes = [
        "NIXFLY_PREVIEW",
        "NIXFLY_PREVIEW_PR_012_AT_5",
        "NIXFLY_PREVIEW_PR_1_AT_",
        "X_NIXFLY_PREVIEW_PR_1_AT_5",
    ]
    assert parse_marker(lookalikes) is None


def test_a_preview_gets_only_listed_secrets_own_values_first():
    production = {"CLAUDE_ACCESS_TOKEN": "prod-claude", "GH_TOKEN": "prod-gh"}
    assert preview_secrets((), production, {}) == {}
    assert preview_secrets(("GH_TOKEN",), production, {}) == {"GH_TOKEN": "prod-gh"}
    assert preview_secrets(("GH_TOKEN",), production, {"GH_TOKEN": "pr-gh"}) == {"GH_TOKEN": "pr-gh"}
    with pytest.raises(NixflyError, match="would receive CLAUDE_ACCESS_TOKEN, which") as refused:
        preview_secrets(("GH_TOKEN",), production, {"CLAUDE_ACCESS_TOKEN": "pasted"})
    assert "pasted" not in str(refused.value)


@pytest.mark.parametrize("name", ["fly-integrated.toml", "fly-ai-server.toml"])
def test_the_preview_toml_is_the_modes_with_its_own_app_env_autostop_and_volume(name, tmp_path):
    mode = flytoml.load(REPO / name)
    path = tmp_path / "preview.toml"
    path.write_text(preview_toml(mode.raw, "oneshot-pr-3", {"AI_PROVIDER": "echo"}, 2))
    written = flytoml.load(path)
    assert written.app == "oneshot-pr-3" and written.primary_region == mode.primary_region
    assert written.env == {**mode.env, "AI_PROVIDER": "echo"}
    http = written.raw["http_service"]
    assert (http["auto_stop_machines"], http["auto_start_machines"], http["min_machines_running"]) == (
        "stop",
        True,
        0,
    )
    assert http["checks"] == mode.raw["http_service"]["checks"]
    assert [m.get("initial_size") for m in written.mounts] == ["2gb"] * len(mode.mounts)
    assert flytoml.problems(written, expected_app="oneshot-pr-3") == flytoml.problems(
        mode, expected_app=mode.app
    )


def test_toml_writes_what_tomllib_reads_back():
    data = {
        "a": 'q"uote\\ \u00e9\n',
        "n": 3,
        "f": 1.5,
        "b": False,
        "l": ["x", 2],
        "t": {"k": 1},
        "arr": [{"x": 1}],
    }
    assert tomllib.loads(toml(data)) == data
    with pytest.raises(NixflyError):
        toml({"when": object()})


def test_preview_config_is_checked_by_key():
    for bad, message in (
        ({"name": "{app}-x"}, "preview.name"),
        ({"branch_name": "{app}-{pr}"}, "preview.branch_name"),
        ({"secrets": ["not a name"]}, "preview.secrets"),
        ({"volume_size_gb": 0}, "preview.volume_size_gb"),
        ({"env_file": "../.env"}, "preview.env_file"),
        ({"nmae": "x"}, "did you mean 'name'"),
    ):
        with pytest.raises(NixflyError, match=message):
            config.load_preview({"preview": bad})
