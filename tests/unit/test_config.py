"""Modes, validation, and flag > config > default resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from nixfly import config, flytoml
from nixfly.config import load_mode, region_counts, resolve, validate_app, validate_region
from nixfly.errors import NixflyError


@pytest.mark.parametrize("name", ["oneshot", "a", "oneshot-ai-providers", "x1-2"])
def test_valid_app_names(name):
    assert validate_app(name) == name


@pytest.mark.parametrize(
    "name", ["", "Oneshot", "-x", "x-", "a_b", "a;rm -rf /", "$(touch x)", "a b", "x" * 64, "é"]
)
def test_invalid_app_names(name):
    with pytest.raises(NixflyError, match="invalid app name"):
        validate_app(name)


@pytest.mark.parametrize("code", ["IAD", "ia", "iad;", "i d"])
def test_invalid_regions(code):
    with pytest.raises(NixflyError, match="invalid region"):
        validate_region(code)


def test_unknown_mode_lists_the_valid_ones():
    with pytest.raises(NixflyError) as info:
        load_mode("both")
    assert "ai-server-only" in str(info.value) and "integrated" in str(info.value)


def test_flags_beat_config_beat_defaults(tmp_path):
    config = {"modes": {"integrated": {"app": "from-config"}}, "health": {"timeout": 5}}
    s = resolve(config, tmp_path, mode="integrated")
    assert s.app == "from-config" and s.health.timeout == 5 and s.mode.flake_attr == "oneshot-integrated"
    assert resolve(config, tmp_path, mode="integrated", app="from-flag").app == "from-flag"


def test_region_defaults_to_the_fly_toml(tmp_path):
    (tmp_path / "fly-integrated.toml").write_text('app = "oneshot"\nprimary_region = "ams"\n')
    assert resolve(None, tmp_path).region == "ams"
    assert resolve(None, tmp_path, region="cdg").region == "cdg"


def test_bad_strategy_and_builder(tmp_path):
    with pytest.raises(NixflyError, match="unknown strategy"):
        resolve(None, tmp_path, strategy="yolo")
    with pytest.raises(NixflyError, match="unknown builder"):
        resolve(None, tmp_path, builder="docker")


def test_hosts_answer_with_echo_while_the_fly_tomls_run_claude():
    """Fly runs the real provider; local and ssh targets lay host_env over the toml's [env]."""
    root = Path(__file__).resolve().parents[2]
    for name in ("integrated", "ai-server-only"):
        mode = load_mode(name)
        assert mode.host_env == {"AI_PROVIDER": "echo"}
        assert flytoml.load(root / mode.fly_config).env["AI_PROVIDER"] == "claude"
    # invoke.yaml can change it (a host that should run claude too); a bad name is refused.
    claude = {"modes": {"integrated": {"host_env": {"AI_PROVIDER": "claude"}}}}
    assert load_mode("integrated", claude).host_env == {"AI_PROVIDER": "claude"}
    with pytest.raises(NixflyError, match="invalid variable name"):
        load_mode("integrated", {"modes": {"integrated": {"host_env": {"AI-PROVIDER": "echo"}}}})


# --- nixfly.modes.<mode>.regions and `inv scale` counts -----------------------------------------------------
def test_regions_default_to_none_declared_and_are_read_from_config():
    assert load_mode("integrated").regions == {}
    declared = {"modes": {"integrated": {"regions": {"iad": 2, "ams": 0}}}}
    assert load_mode("integrated", declared).regions == {"iad": 2, "ams": 0}


@pytest.mark.parametrize(
    ("regions", "needle"),
    [
        ({"IAD": 1}, "'IAD' is not a Fly region code"),
        ({"iadd": 1}, "'iadd' is not a Fly region code"),
        ({True: 1}, "True is not a Fly region code"),
        ({"iad": -1}, "regions.iad: -1 is not a number of machines"),
        ({"iad": 1.5}, "regions.iad: 1.5 is not a number of machines"),
        ({"iad": True}, "regions.iad: True is not a number of machines"),
        ({"iad": "2"}, "regions.iad: '2' is not a number of machines"),
        (["iad"], "must be a mapping"),
    ],
)
def test_bad_declared_regions(regions, needle):
    with pytest.raises(NixflyError, match=needle.replace("(", r"\(")):
        load_mode("integrated", {"modes": {"integrated": {"regions": regions}}})


def test_region_counts_from_the_command_line():
    assert region_counts("iad=2,ams=1") == {"iad": 2, "ams": 1}
    assert region_counts("iad=2 ams=0") == {"iad": 2, "ams": 0}
    assert region_counts(" ") == {}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("iad", "'iad' is not REGION=COUNT"),
        ("=2", "'=2' is not REGION=COUNT"),
        ("IAD=1", "invalid region 'IAD'"),
        ("iad=-1", "iad=-1: the count must be a whole number"),
        ("iad=+1", "iad=+1: the count must be a whole number"),
        ("iad=x", "iad=x: the count must be a whole number"),
        ("iad=\uff12", "the count must be a whole number"),  # a fullwidth 2: not an ASCII digit
        ("iad=1,iad=2", "region iad is given twice"),
    ],
)
def test_bad_region_counts(text, needle):
    with pytest.raises(NixflyError, match=needle.replace("+", r"\+")):
        region_counts(text)


def test_host_groups_are_named_lists_of_distinct_ssh_urls(tmp_path):
    s = resolve({"groups": {"web": ["ssh://deploy@a", "ssh://deploy@b:2222"], "db": ["ssh://c"]}}, tmp_path)
    assert s.groups == {"web": ("ssh://deploy@a", "ssh://deploy@b:2222"), "db": ("ssh://c",)}
    assert resolve(None, tmp_path).groups == {}


@pytest.mark.parametrize(
    ("groups", "said"),
    [
        (
            {"web": ["ssh://a", "ssh://A"]},
            "config nixfly.groups.web: ssh://A is listed twice — list each host once",
        ),
        ({"web": ["a.example.org"]}, "config nixfly.groups.web: 'a.example.org' is not an ssh:// URL"),
        ({"web": []}, "config nixfly.groups.web: a host group must be a non-empty list"),
        ({"web": "ssh://a"}, "config nixfly.groups.web: a host group must be a non-empty list"),
        ({"web": ["ssh://a:99999"]}, "config nixfly.groups.web: invalid SSH host 'ssh://a:99999'"),
        ({"local": ["ssh://a"]}, "config nixfly.groups.local: 'local' is a target of its own"),
        ({"Web": ["ssh://a"]}, "config nixfly.groups.Web: group names use lowercase letters"),
        (["ssh://a"], "config nixfly.groups: must be a mapping"),
    ],
)
def test_bad_host_groups_are_refused_naming_the_key(tmp_path, groups, said):
    with pytest.raises(NixflyError) as refused:
        resolve({"groups": groups}, tmp_path)
    assert str(refused.value).startswith(said)


def test_the_old_key_of_host_groups_is_still_read_with_a_warning_naming_the_new_one(
    tmp_path, capsys, monkeypatch
):
    """``nixfly.targets`` was the key's name: a user's invoke.yaml keeps working, and is told to rename it."""
    monkeypatch.setattr(config, "_WARNED", set())
    s = resolve({"targets": {"web": ["ssh://deploy@a"]}}, tmp_path)
    assert s.groups == {"web": ("ssh://deploy@a",)}
    assert capsys.readouterr().err.count("nixfly.targets is now called nixfly.groups: rename the key") == 1
    with pytest.raises(NixflyError, match=r"^config nixfly\.targets: and nixfly\.groups are both set"):
        resolve({"targets": {"web": ["ssh://a"]}, "groups": {"db": ["ssh://b"]}}, tmp_path)
