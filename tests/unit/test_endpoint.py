"""nixfly.endpoint: SSH hosts as users type them, checked before any connection."""

from __future__ import annotations

import pytest

from nixfly.endpoint import Endpoint, parse_endpoint
from nixfly.errors import NixflyError


@pytest.mark.parametrize(
    ("text", "endpoint", "shown"),
    [
        ("web1", Endpoint("web1"), "web1"),
        (
            "deploy@web1.example.org:2222",
            Endpoint("web1.example.org", "deploy", 2222),
            "deploy@web1.example.org:2222",
        ),
        ("ssh://root@10.0.0.5", Endpoint("10.0.0.5", "root"), "root@10.0.0.5"),
        ("root@[::1]:22", Endpoint("[::1]", "root", 22), "root@[::1]:22"),
    ],
)
def test_endpoints(text, endpoint, shown):
    assert parse_endpoint(text) == endpoint and str(endpoint) == shown


@pytest.mark.parametrize(
    "text", ["", "-oProxyCommand=x", "root@-x", "a@b:0", "a@b:70000", "a b", "web1\n", "a@b:c"]
)
def test_what_ssh_could_read_as_an_option_or_garbage_is_refused(text):
    with pytest.raises(NixflyError, match="invalid SSH host"):
        parse_endpoint(text)


def test_store_uri_drops_the_port_and_brackets():
    assert Endpoint("[::1]", "root", 2222).store_uri == "ssh://root@::1"
    assert Endpoint("web1").store_uri == "ssh://web1"
