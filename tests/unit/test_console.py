"""nixfly.console: diagnostics on stderr, plain off a terminal, markup in messages left as typed."""

from __future__ import annotations

import json
import sys

import pytest

from nixfly import console


@pytest.fixture(autouse=True)
def fresh_console(monkeypatch):
    for name in ("CI", "GITHUB_ACTIONS", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    console.stderr.cache_clear()
    yield
    console.stderr.cache_clear()


def test_everything_goes_to_stderr_uncoloured_off_a_terminal(capsys):
    console.say("building [bold]x[/bold]")
    console.note("$ nix build")
    console.warn("careful")
    console.error("broken")
    console.ok("done")
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "building [bold]x[/bold]",  # a message's brackets are text, not rich markup
        "$ nix build",
        "warning: careful",
        "error: broken",
        "done",
    ]
    assert "\x1b[" not in err


def test_a_table_uses_ascii_borders_in_logs(capsys):
    console.table("title", ("a", "b"), [("1", "[x]")])
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "title" and "| 1 | [x] |" in err.replace("  ", " ")
    assert "╭" not in err


def test_progress_off_a_terminal_is_one_line_per_step(capsys):
    with console.progress("build"):
        pass
    assert capsys.readouterr().err == "→ build\n"


@pytest.mark.parametrize("name", ["CI", "GITHUB_ACTIONS"])
def test_ci_is_never_fancy(monkeypatch, name):
    monkeypatch.setenv(name, "true")
    assert console.in_ci() and not console.fancy()


def test_no_color_and_dumb_terminals(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert console.fancy()
    monkeypatch.setenv("TERM", "dumb")
    assert not console.fancy()
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not console.fancy()


def test_print_json_is_sorted_and_indented(capsys):
    console.print_json({"b": 1, "a": [2]})
    out = capsys.readouterr().out
    assert out == json.dumps({"a": [2], "b": 1}, indent=2) + "\n"
    assert sys.stdout is not None
