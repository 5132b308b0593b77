"""nixfly.target: naming a target, and the one place that picks Fly or hosts."""

from __future__ import annotations

import pytest
from helpers.fakes import checkout, settings

from nixfly.engine import open_target
from nixfly.errors import NixflyError
from nixfly.fly import FlyTarget
from nixfly.hosts import HostTarget
from nixfly.remote import Endpoint
from nixfly.target import TARGET_HINT, TargetSpec, parse_target


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("fly", TargetSpec("fly")),
        ("", TargetSpec("fly")),
        ("ssh://deploy@web1:2222", TargetSpec("ssh", Endpoint("web1", "deploy", 2222))),
        ("ssh://web1", TargetSpec("ssh", Endpoint("web1"))),
    ],
)
def test_parse_target(text, spec):
    assert parse_target(text) == spec


@pytest.mark.parametrize("text", ["moon", "Fly", "ssh:web1", "deploy@web1", "ssh://-oProxyCommand=x", 7])
def test_unknown_targets_say_what_is_known(text):
    with pytest.raises(NixflyError) as info:
        parse_target(text)
    hint = info.value.hint or ""
    # What is known: the target kinds (and that no group is defined), or what an SSH host looks like.
    assert hint.startswith(TARGET_HINT) or hint.startswith("use user@host or user@host:port"), hint


def test_a_target_names_itself_as_typed():
    assert str(parse_target("ssh://deploy@web1:2222")) == "ssh://deploy@web1:2222"
    assert str(parse_target("local")) == "local"


def test_open_target_picks_fly_or_a_host(tmp_path):
    s = settings(checkout(tmp_path))
    fly = open_target(s, "fly")
    assert isinstance(fly, FlyTarget)
    fly.close()
    host = open_target(s, "ssh://deploy@web1", port=8080, env={"A": "1"})
    assert isinstance(host, HostTarget) and host.spec.endpoint == Endpoint("web1", "deploy")
    assert (host.port, host.overrides) == (8080, {"A": "1"})
    host.close()  # nothing connected: a host target connects on first use


def test_port_and_env_are_for_hosts_only(tmp_path):
    s = settings(checkout(tmp_path))
    with pytest.raises(NixflyError, match="--port applies to local and ssh:// targets"):
        open_target(s, "fly", env={"A": "1"})
