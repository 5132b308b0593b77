"""nixfly.target: naming a target, and the one place that picks Fly or hosts."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest
from helpers.fakes import checkout, settings

import nixfly
from nixfly.engine import open_target
from nixfly.errors import CommandFailure, NixflyError
from nixfly.fly import FlyTarget
from nixfly.hosts import HostTarget
from nixfly.remote import Endpoint
from nixfly.runner import here
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
    fly = open_target(s, here(s), "fly")
    assert isinstance(fly, FlyTarget)
    fly.close()
    host = open_target(s, here(s), "ssh://deploy@web1", port=8080, env={"A": "1"})
    assert isinstance(host, HostTarget) and host.spec.endpoint == Endpoint("web1", "deploy")
    assert (host.port, host.overrides) == (8080, {"A": "1"})
    host.close()  # nothing connected: a host target connects on first use


def test_port_and_env_are_for_hosts_only(tmp_path):
    s = settings(checkout(tmp_path))
    with pytest.raises(NixflyError, match="--port applies to local and ssh:// targets"):
        open_target(s, here(s), "fly", env={"A": "1"})


def kind_tests(source: str) -> list[tuple[str, int, str]]:
    """Each comparison of a ``.kind`` in ``source`` not about a failed command: (function, line, code).

    A ``CommandError.kind`` ("failed", "timed out", "not found": ``errors.CommandFailure``) is how code tells
    a command's failures apart, and is allowed; any other ``.kind`` compared is a target kind."""
    command_kinds = set(get_args(CommandFailure))
    found = []

    def walk(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef) else function
            if isinstance(child, ast.Compare):
                sides = [child.left, *child.comparators]
                about_kind = any(isinstance(s, ast.Attribute) and s.attr == "kind" for s in sides)
                words = {s.value for s in ast.walk(child) if isinstance(s, ast.Constant)}
                if about_kind and not (words and words <= command_kinds):
                    found.append((name, child.lineno, ast.unparse(child)))
            walk(child, name)

    walk(ast.parse(source), "")
    return found


def test_only_open_target_looks_at_a_target_kind():
    """Each target answers for itself (its label, lock, retry hint); only the selection reads the kind."""
    package = Path(nixfly.__file__).parent
    found = {
        (str(path.relative_to(package)), *hit)
        for path in sorted(package.rglob("*.py"))
        for hit in kind_tests(path.read_text(encoding="utf-8"))
    }
    assert {(path, function) for path, function, _, _ in found} == {("engine.py", "open_target")}, found


def test_the_kind_check_finds_target_kinds_and_lets_command_failures_be():
    source = (
        "def f(spec, exc):\n"
        '    a = spec.kind == "group"\n'
        '    b = "fly" != spec.kind\n'
        '    c = exc.kind == "timed out"\n'
        '    d = exc.kind != "not found"\n'
        "    e = spec.kind in KINDS\n"
    )
    assert [line for _, line, _ in kind_tests(source)] == [2, 3, 6]
