"""flyctl_sim.importfmt: a port of flyctl's ``parseSecrets``, checked rule by rule.

Expected values come from reading ``internal/command/secrets/parser.go`` at flyctl v0.4.87+6 (ad0172fac); the
first block is every case of its ``parser_test.go``, verbatim.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flyctl_sim import control
from flyctl_sim.importfmt import (
    ERR_TOO_LONG,
    MAX_TOKEN_BYTES,
    GoPanic,
    Scanner,
    go_trim_space,
    parse_import,
    scan_lines,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# --- parser_test.go, every case ---------------------------------------------------------------------------

PARSER_TEST_GO = [
    (  # Test_parse_basic
        "\n# A comment plus a new line with spaces\n\nFOO=BAR\n# Another comment\nQUX=NAH\n",
        {"FOO": "BAR", "QUX": "NAH"},
    ),
    ("FOO=BAR\nQUX=NAH\n", {"FOO": "BAR", "QUX": "NAH"}),  # Test_parse_unix
    ("FOO=BAR\r\nQUX=NAH\r\n", {"FOO": "BAR", "QUX": "NAH"}),  # Test_parse_windows
    (  # Test_parse_mulltiline
        '\nFOO=BAR\nMULTILINE="""SOMETHING\nANOTHER LINE\n\nENDSHERE"""\nTRAILERENV=what\n'
        'FIN="""Here is the end,\nmy only friend"""\n',
        {
            "FOO": "BAR",
            "MULTILINE": "SOMETHING\nANOTHER LINE\n\nENDSHERE",
            "TRAILERENV": "what",
            "FIN": "Here is the end,\nmy only friend",
        },
    ),
    ("FOO=BAR,BAZ", {"FOO": "BAR,BAZ"}),  # Test_parse_with_comma
    ("FOO=BAR BAZ", {"FOO": "BAR BAZ"}),  # Test_parse_with_equal
    ('FOO="BAR BAZ"', {"FOO": "BAR BAZ"}),  # Test_parse_with_double_quotes
    ("FOO = BAR", {"FOO": "BAR"}),  # Test_parse_with_spaces (flyctl#3002)
    ('FOO="BAR BAZ" # comment', {"FOO": "BAR BAZ"}),  # Test_parse_with_comment (flyctl#4291)
    ("FOO='BAR BAZ'\nKEY='value'", {"FOO": "BAR BAZ", "KEY": "value"}),  # Test_parse_with_single_quotes
    (  # Test_parse_singleline_triple_quotes
        'VARIABLE="""my-single-line-multiline-string"""\nANOTHER="""another"""',
        {"VARIABLE": "my-single-line-multiline-string", "ANOTHER": "another"},
    ),
    (  # Test_parse_triple_quotes_edge_cases
        'EMPTY=""""""\nSINGLE="""x"""\nWITHSPACES="""  spaces  """\nMIXED="""line1"""\nNORMAL=regular',
        {"EMPTY": "", "SINGLE": "x", "WITHSPACES": "  spaces  ", "MIXED": "line1", "NORMAL": "regular"},
    ),
    (  # Test_parse_singleline_triple_quotes_with_spaces
        'VARIABLE = """my-single-line-multiline-string"""\nANOTHER = """another"""',
        {"VARIABLE": "my-single-line-multiline-string", "ANOTHER": "another"},
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSER_TEST_GO)
def test_flyctl_parser_test_go(text: str, expected: dict[str, str]) -> None:
    assert parse_import(text) == expected


# --- parser.go, rule by rule: one line in, the value out ---------------------------------------------------

ONE_LINE = [
    # strings.TrimLeft(value, " "): spaces only, left only
    ("K=  x", "x"),
    ("K=\ttab kept", "\ttab kept"),
    ("K=trailing   ", "trailing   "),
    ("K=a=b=c", "a=b=c"),  # strings.Cut at the FIRST "="
    ("K=", ""),
    ("  K \t=x", "x"),  # key = strings.TrimSpace(key)
    # the "#" cut: Count(l, `"`) even → TrimRight(l, " "), counted BEFORE any quote is removed
    ("K=ab#cd", "ab"),
    ("K=ab   # comment", "ab"),
    ("K=#", ""),
    ('K="a#b"', "a#b"),  # one " before the #: odd, kept
    ('K="a" # c', "a"),  # two: cut to "a", then the pair is removed
    ('K="{"p":"x#y"}"', '"{"p":"x'),  # four: cut; the result no longer ends with " so it keeps its opener
    ('K={"p":"x#y"}', '{"p":"x#y"}'),  # three: kept whole
    # nixfly's old encoder wrapped JSON in "…": eight " before the # → cut, exit 0 (the bug in the issue)
    ('K="{"user":"a","password":"p#ss"}"', '"{"user":"a","password":"p'),
    ("K='a#b'", "'a"),  # zero " before the #: cut, and the lone opener stays
    ("K='a\"#b'", 'a"#b'),  # one: kept, then the '…' pair is removed
    ('K="""a#b"""', "a#b"),  # three: kept, one-line triple
    ('K="""a"""#c', "a"),  # six: cut to """a""", then one-line triple
    ('K="  #c', '"  #c'),  # one: kept; no closing quote, nothing removed
    # one-line """…""": HasPrefix && HasSuffix && len(value) >= 6
    ('K=""""""', ""),
    ('K="""""x"""', '""x'),
    ('K="""a"b"""', 'a"b'),
    # "…" then '…': one pair removed, only when the value starts AND ends with it
    ('K=""', ""),
    ("K=''", ""),
    ('K="x"  ', '"x"  '),  # ends with spaces, not with " (no trailing trim without a cut)
    ('K="unterminated', '"unterminated'),
    ("K='it''s'", "it''s"),
    ("K=\"'mixed'\"", "'mixed'"),
    ("K='\"mixed\"'", '"mixed"'),
    # keys: whatever is left of the first "=", trimmed
    ("export K=v", None),  # key "export K"
    ("=v", None),  # key ""
]


@pytest.mark.parametrize(("line", "expected"), ONE_LINE)
def test_one_line_rules(line: str, expected: str | None) -> None:
    parsed = parse_import(line)
    if expected is None:
        key, _, value = line.partition("=")
        assert parsed == {key.strip(): value}
    else:
        assert parsed == {"K": expected}


MULTI_LINE = [
    # HasPrefix(value, `"""`) without the one-line suffix: TrimPrefix + "\n", then raw lines
    ('K="""a\n  b # not cut\n\n# not a comment\nc"""', "a\n  b # not cut\n\n# not a comment\nc"),
    ('K="""\nx"""', "\nx"),  # """ alone (len 3) opens
    ('K=""""\nx"""', '"\nx'),  # """" (len 4): prefix and suffix, but shorter than 6
    ('K="""""\nx"""', '""\nx'),
    ('K="""#x\ny"""', "#x\ny"),  # three " before the #: first line kept
    ('K="""x"#y\nz"""', 'x"\nz'),  # four: the FIRST line is cut too
    ('K="""a\nb"""c"""', 'a\nb"""c'),  # CutSuffix removes ONE trailing """
    ('K="""a\n"""\nL=1', "a\n"),  # a line that is just """ closes with ""
    ('K="""a\nb"""x\nc"""', 'a\nb"""x\nc'),  # only a line ENDING with """ closes
    ('K="""a\r\n\r\nb"""\r\n', "a\n\nb"),  # ScanLines drops the \r of CRLF inside too
    ('K="""a\r\r\nb"""', "a\r\nb"),  # ...but only one
    ('K=   """x\ny"""', "x\ny"),  # TrimLeft before the prefix test
]


@pytest.mark.parametrize(("text", "expected"), MULTI_LINE)
def test_multi_line_rules(text: str, expected: str) -> None:
    assert parse_import(text)["K"] == expected


def test_a_multi_line_value_swallows_following_pairs_until_a_line_ends_with_triple() -> None:
    text = 'K="""a"#b"""\nL=1\nM=2"""\nN=3'  # the cut turns the one-line value into an opener
    assert parse_import(text) == {"K": 'a"\nL=1\nM=2', "N": "3"}


def test_a_multi_line_value_open_at_the_end_is_dropped() -> None:
    assert parse_import('A=1\nA="""never\nclosed') == {"A": "1"}


def test_comments_blank_lines_and_invalid_lines() -> None:
    # HasPrefix(line, "#") on the RAW line; TrimSpace(line) == "" with Go's unicode.IsSpace
    assert parse_import("# c\n   \n\t\n\u3000\u00a0\n#K=v\n") == {}
    assert parse_import("  #K=v") == {"#K": "v"}  # an indented # is not a comment
    with pytest.raises(ValueError) as info:
        parse_import("GOOD=1\nnot a pair\n")
    assert str(info.value) == "Secrets must be provided as NAME=VALUE pairs (not a pair is invalid)"
    with pytest.raises(ValueError, match=r"\(\x1c is invalid\)"):
        parse_import("\x1c")  # not a Go space


def test_later_duplicate_wins() -> None:
    assert parse_import("A=1\nA=2") == {"A": "2"}


@pytest.mark.parametrize("line", ['K="', "K='", 'K=  "', "K=' # comment", "K='#"])
def test_a_lone_quote_panics(line: str) -> None:
    # value[1 : len(value)-1] on a one-byte value; "K=' # comment" is cut to "'" first
    with pytest.raises(GoPanic, match=r"^runtime error: slice bounds out of range \[1:0\]$"):
        parse_import(f"A=1\n{line}\n")


def test_go_trim_space_differs_from_str_strip() -> None:
    assert go_trim_space("\x1ckey\x1f") == "\x1ckey\x1f"
    assert go_trim_space("\u00a0\u3000key\t\n\x85") == "key"


# --- bufio.Scanner + ScanLines ---------------------------------------------------------------------------


def test_scan_lines_matches_bufio_scanlines() -> None:
    assert list(scan_lines("a\nb")) == ["a", "b"]
    assert list(scan_lines("a\nb\n")) == ["a", "b"]
    assert list(scan_lines("a\r\n\r\nb")) == ["a", "", "b"]
    assert list(scan_lines("a\r")) == ["a"]  # dropCR at EOF too
    assert list(scan_lines("a\rb\n")) == ["a\rb"]  # a lone \r does not end a line
    assert list(scan_lines("\n")) == [""]
    assert list(scan_lines("")) == []


def test_scanner_reports_err_too_long_and_parse_ignores_it() -> None:
    fits = "B=" + "x" * (MAX_TOKEN_BYTES - 3)  # 65535 bytes + "\n" = a full 64 KiB buffer: fits
    scanner = Scanner(f"{fits}\n")
    assert scanner.scan() and scanner.text() == fits and not scanner.scan() and scanner.err() is None
    too_long = "B=" + "x" * (MAX_TOKEN_BYTES - 2)  # 65536 bytes: bufio.ErrTooLong
    scanner = Scanner(f"A=1\n{too_long}\nC=3")
    assert scanner.scan() and not scanner.scan() and scanner.err() == ERR_TOO_LONG

    assert parse_import(f"A=1\n{fits}\nC=3") == {"A": "1", "B": fits[2:], "C": "3"}
    assert parse_import(f"A=1\n{too_long}\nC=3") == {"A": "1"}
    assert parse_import(f"A=1\n{too_long}") == {"A": "1"}  # the last line too: the buffer fills first
    assert parse_import(f"A=1\n{fits}") == {"A": "1", "B": fits[2:]}
    multibyte = "B=" + "é" * ((MAX_TOKEN_BYTES - 2) // 2)  # counted in UTF-8 bytes
    assert parse_import(f"A=1\n{multibyte}\nC=3") == {"A": "1"}
    with_cr = fits + "\r"  # the \r is in the buffer until ScanLines drops it
    assert parse_import(f"A=1\n{with_cr}\nC=3") == {"A": "1"}
    assert parse_import(f'A=1\nM="""start\n{"y" * MAX_TOKEN_BYTES}\nend"""') == {"A": "1"}


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("AB=#\"' \t\r\n\u3000é")), max_size=60))
def test_never_raises_anything_but_flyctls_error_or_a_panic(text: str) -> None:
    try:
        result = parse_import(text)
    except ValueError as exc:
        assert "Secrets must be provided as NAME=VALUE pairs" in str(exc)
    except GoPanic as panic:
        assert "slice bounds out of range [1:0]" in str(panic)
    else:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())


# --- `fly secrets import` (import.go: runImport) ---------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = control.init(tmp_path / "flyhome")
    control.create_app(home, "demo")
    return home


def test_import_panics_like_a_release_flyctl_and_stores_nothing(home: Path) -> None:
    proc = control.run(home, "secrets", "import", "-a", "demo", stdin='GOOD=1\nBAD="\n')
    assert proc.returncode == 3
    assert proc.stdout.startswith("\x1b[31mOops, something went wrong! Could you try that again?\x1b[0m\n\n")
    assert "runtime error: slice bounds out of range [1:0]" in proc.stdout
    assert proc.stderr == ""
    assert control.secrets(home, "demo") == {}


def test_import_stores_what_it_read_before_a_too_long_line_with_exit_0(home: Path) -> None:
    stdin = "A=1\nB=" + "x" * MAX_TOKEN_BYTES + "\nC=3\n"
    proc = control.run(home, "secrets", "import", "-a", "demo", "--stage", stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    assert control.secrets(home, "demo") == {"A": "1"}


def test_import_errors_are_flyctls(home: Path) -> None:
    proc = control.run(home, "secrets", "import", "-a", "demo", stdin="# only a comment\n")
    assert (proc.returncode, proc.stderr) == (1, "Error: requires at least one SECRET=VALUE pair\n")
    proc = control.run(home, "secrets", "import", "-a", "demo", stdin="OK=1\nbroken\n")
    assert proc.stderr == (
        "Error: Failed to parse secrets from stdin: Secrets must be provided as NAME=VALUE pairs "
        "(broken is invalid)\n"
    )
    # a too-long FIRST line leaves nothing: the same error as empty input
    proc = control.run(home, "secrets", "import", "-a", "demo", stdin="A=" + "x" * MAX_TOKEN_BYTES)
    assert (proc.returncode, proc.stderr) == (1, "Error: requires at least one SECRET=VALUE pair\n")


# --- older releases: each change of parser.go, on both sides of the release that made it --------------------

OLDER = [
    # 19e91adbd (v0.1.41): "…" stripped; before, the quotes stay.
    ('A="x"', (0, 1, 40), {"A": '"x"'}),
    ('A="x"', (0, 1, 41), {"A": "x"}),
    # 066194c1c (v0.3.100): key and leading spaces trimmed, "#" cut after an even number of quotes.
    ("A = x # c", (0, 3, 99), {"A ": " x # c"}),
    ("A = x # c", (0, 3, 100), {"A": "x"}),
    ('A="x#y"', (0, 3, 99), {"A": "x#y"}),
    ('A="x#y"', (0, 3, 100), {"A": "x#y"}),  # one quote before the #: odd, not cut
    # 3869006c1 (v0.3.226): a one-line """x""" is a value; before, it opens a multi-line one that swallows
    # the following entries until a line ending in """.
    ('A="""x"""\nB=1\nC=2"""\n', (0, 3, 225), {"A": 'x"""\nB=1\nC=2'}),
    ('A="""x"""\nB=1\n', (0, 3, 226), {"A": "x", "B": "1"}),
    # 0f76e62ff (v0.4.14): '…' stripped.
    ("A='x'", (0, 4, 13), {"A": "'x'"}),
    ("A='x'", (0, 4, 14), {"A": "x"}),
]


@pytest.mark.parametrize(("text", "version", "expected"), OLDER)
def test_each_release_parses_as_its_parser_go(text: str, version: tuple[int, ...], expected: dict) -> None:
    assert parse_import(text, version) == expected


def test_a_lone_double_quote_panics_only_once_quotes_are_stripped() -> None:
    assert parse_import('A="', (0, 1, 40)) == {"A": '"'}
    with pytest.raises(GoPanic):
        parse_import('A="', (0, 1, 41))


def test_the_simulator_plays_the_parser_of_the_version_it_claims(tmp_path: Path) -> None:
    home = control.init(tmp_path / "fly")
    control.create_app(home, "demo")
    control.set_version(home, "0.3.172")
    proc = control.run(home, "secrets", "import", "-a", "demo", "--stage", stdin="A='x'\n")
    assert proc.returncode == 0, proc.stderr
    assert control.secrets(home, "demo") == {"A": "'x'"}
