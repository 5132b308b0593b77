"""``--target``: which destination a text names, and the one place that opens it."""

from __future__ import annotations

import pytest

from nixfly.config import resolve
from nixfly.engine import open_target
from nixfly.errors import NixflyError
from nixfly.hosts import GroupTarget, HostTarget
from nixfly.remote import Endpoint
from nixfly.runner import here
from nixfly.target import Options, parse_target

GROUPS = {"web": ("ssh://deploy@a", "ssh://deploy@b:2222")}


def test_single_targets():
    assert parse_target("").kind == parse_target("fly").kind == "fly"
    with pytest.raises(NixflyError, match="unknown target"):
        parse_target(" fly ")  # not stripped: what is typed is what is meant (a newline never passes)
    assert str(parse_target("local")) == "local"
    one = parse_target("ssh://root@host:2222")
    assert (one.kind, one.endpoint, str(one)) == (
        "ssh",
        Endpoint("host", "root", 2222),
        "ssh://root@host:2222",
    )


def test_groups_by_list_and_by_name_keep_the_order():
    listed = parse_target("ssh://b, ssh://root@a:22", GROUPS)
    assert listed.kind == "group" and listed.hosts == (Endpoint("b"), Endpoint("a", "root", 22))
    assert str(listed) == "ssh://b,ssh://root@a:22" and listed.group == ""
    named = parse_target("web", GROUPS)
    assert named.hosts == (Endpoint("a", "deploy"), Endpoint("b", "deploy", 2222)) and str(named) == "web"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("ssh://a,ssh://A", "--target 'ssh://a,ssh://A': ssh://A is listed twice"),
        ("ssh://a,local", "--target 'ssh://a,local': 'local' is not an ssh:// URL"),
        ("ssh://a,", "--target 'ssh://a,': '' is not an ssh:// URL"),
        (
            "ssh://a,ssh://-oProxyCommand=x",
            "--target 'ssh://a,ssh://-oProxyCommand=x': invalid SSH host 'ssh://-oProxyCommand=x' — list",
        ),
        (
            "db",
            "unknown target 'db' — use fly, local, ssh://user@host[:port], ssh://a,ssh://b or a group from "
            "nixfly.groups in invoke.yaml (web)",
        ),
        ("ftp://host", "unknown target 'ftp://host'"),
    ],
)
def test_bad_targets_are_one_clear_error(text, said):
    with pytest.raises(NixflyError) as refused:
        parse_target(text, GROUPS)
    assert str(refused.value).startswith(said)


def test_no_group_defined_says_so():
    with pytest.raises(NixflyError, match=r"in invoke.yaml \(none defined\)"):
        parse_target("web")


def test_open_target_picks_the_implementation(tmp_path):
    s = resolve({"groups": {"web": list(GROUPS["web"])}}, tmp_path)
    group = open_target(s, here(s), "web")
    single = open_target(s, here(s), "ssh://root@a")
    try:
        assert isinstance(group, GroupTarget) and [m.name for m in group.members] == [
            "deploy@a",
            "deploy@b:2222",
        ]
        assert isinstance(single, HostTarget) and single.name == "root@a"
    finally:
        group.close()
        single.close()
    with pytest.raises(NixflyError, match="--port applies to local and ssh:// targets"):
        open_target(s, here(s), "fly", port=4000)


def test_batch_means_something_for_groups_only(tmp_path):
    s = resolve({"groups": {"web": list(GROUPS["web"])}}, tmp_path)
    for text, batch in (("web", 2), ("ssh://a,ssh://b", 5), ("local", 1)):
        open_target(s, here(s), text, Options(batch=batch)).close()
    for text in ("fly", "", "local", "ssh://a"):
        with pytest.raises(NixflyError, match="--batch applies to a group of hosts"):
            open_target(s, here(s), text, Options(batch=2))
