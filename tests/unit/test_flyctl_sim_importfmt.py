"""flyctl_sim.importfmt: the ``fly secrets import`` parser, rule by rule (flyctl's own cases included)."""

from __future__ import annotations

import pytest
from flyctl_sim.importfmt import MAX_TOKEN_BYTES, go_trim_space, parse_import, scan_lines
from hypothesis import given
from hypothesis import strategies as st

# --- flyctl's own parser_test.go cases ------------------------------------------------------------------


def test_basic_with_comments_and_blank_lines() -> None:
    text = "\n# A comment plus a new line with spaces\n\nFOO=BAR\n# Another comment\nQUX=NAH\n"
    assert parse_import(text) == {"FOO": "BAR", "QUX": "NAH"}


def test_unix_and_windows_line_endings() -> None:
    assert parse_import("FOO=BAR\nQUX=NAH\n") == {"FOO": "BAR", "QUX": "NAH"}
    assert parse_import("FOO=BAR\r\nQUX=NAH\r\n") == {"FOO": "BAR", "QUX": "NAH"}


def test_multiline() -> None:
    text = (
        '\nFOO=BAR\nMULTILINE="""SOMETHING\nANOTHER LINE\n\nENDSHERE"""\nTRAILERENV=what\n'
        'FIN="""Here is the end,\nmy only friend"""\n'
    )
    assert parse_import(text) == {
        "FOO": "BAR",
        "MULTILINE": "SOMETHING\nANOTHER LINE\n\nENDSHERE",
        "TRAILERENV": "what",
        "FIN": "Here is the end,\nmy only friend",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FOO=BAR,BAZ", {"FOO": "BAR,BAZ"}),
        ("FOO=BAR BAZ", {"FOO": "BAR BAZ"}),
        ('FOO="BAR BAZ"', {"FOO": "BAR BAZ"}),
        ("FOO = BAR", {"FOO": "BAR"}),
    ],
)
def test_flyctl_single_line_cases(text: str, expected: dict[str, str]) -> None:
    assert parse_import(text) == expected


# --- the reference's documented extras ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FOO=ab#cd", "ab"),
        ("FOO=ab #cd", "ab"),
        ("FOO=ab   # trailing comment", "ab"),
        ('FOO="a#b"', "a#b"),
        ("FOO='a#b'", "a#b"),
        ("FOO='single quoted'", "single quoted"),
        ("FOO=#all comment", ""),
        ('FOO="a" # c', '"a"'),  # not quoted end-to-end: unquoted rules apply, then no quote stripping
        ('FOO="unterminated', '"unterminated'),
        ('FOO="', '"'),  # a lone quote is not a pair
        ("FOO=''", ""),
        ('FOO=""', ""),
        ("FOO=\ttab kept", "\ttab kept"),  # only spaces are trimmed on the left
        ("FOO=trailing   ", "trailing   "),  # no right-trim without a comment
        ("FOO=a=b=c", "a=b=c"),
        ("FOO=", ""),
        ("  FOO  =x", "x"),
        ("FOO=with\rinner", "with\rinner"),  # only ONE trailing \r is dropped
        ("FOO=x\r\r", "x\r"),
    ],
)
def test_quotes_comments_and_trimming(text: str, expected: str) -> None:
    assert parse_import(text) == {"FOO": expected}


def test_comment_and_blank_line_rules() -> None:
    text = "# comment\n   \n\t\n  # indented hash is NOT a comment line\n"
    with pytest.raises(ValueError, match=r"\(  # indented hash is NOT a comment line is invalid\)"):
        parse_import(text)


def test_invalid_line_message_is_flyctls() -> None:
    with pytest.raises(ValueError) as info:
        parse_import("GOOD=1\nnot a pair\n")
    assert str(info.value) == "Secrets must be provided as NAME=VALUE pairs (not a pair is invalid)"


def test_empty_input_gives_no_pairs() -> None:
    assert parse_import("") == {}
    assert parse_import("\n\n# only comments\n") == {}


def test_later_duplicate_wins() -> None:
    assert parse_import("A=1\nA=2") == {"A": "2"}


def test_multiline_quirks() -> None:
    # Opening and closing on one line still enters multi-line mode (flyctl only checks the prefix).
    assert parse_import('X="""abc"""\nY=1\nend"""') == {"X": 'abc"""\nY=1\nend'}
    # A multi-line value still open at the end of input is dropped.
    assert parse_import('A=1\nB="""never\nclosed') == {"A": "1"}
    # Inside a multi-line value, comment and blank lines are content; CRLF is normalised per line.
    assert parse_import('K="""\r\n# not a comment\r\n\r\nlast"""\r\n') == {"K": "\n# not a comment\n\nlast"}
    # Quotes and # inside are kept verbatim; the closing line only needs to END with """.
    assert parse_import('K="""a "quoted" #x\nb"""') == {"K": 'a "quoted" #x\nb'}
    # Leading spaces before """ are trimmed (value is left-trimmed first).
    assert parse_import('K=   """x\ny"""') == {"K": "x\ny"}


def test_scan_lines_matches_bufio_scanlines() -> None:
    assert list(scan_lines("a\nb")) == ["a", "b"]
    assert list(scan_lines("a\nb\n")) == ["a", "b"]
    assert list(scan_lines("a\r\n\r\nb")) == ["a", "", "b"]
    assert list(scan_lines("\n")) == [""]
    assert list(scan_lines("")) == []


def test_line_of_64k_bytes_silently_ends_parsing() -> None:
    ok = "B=" + "x" * (MAX_TOKEN_BYTES - 3)  # 65535 bytes: fits
    assert parse_import(f"A=1\n{ok}\nC=3") == {"A": "1", "B": "x" * (MAX_TOKEN_BYTES - 3), "C": "3"}
    too_long = "B=" + "x" * (MAX_TOKEN_BYTES - 2)  # 65536 bytes: bufio.ErrTooLong
    assert parse_import(f"A=1\n{too_long}\nC=3") == {"A": "1"}
    # also as the last line without a newline, and measured in UTF-8 bytes, \r included
    assert parse_import(f"A=1\n{too_long}") == {"A": "1"}
    multibyte = "B=" + "é" * ((MAX_TOKEN_BYTES - 2) // 2)  # 2 + 65534 bytes
    assert parse_import(f"A=1\n{multibyte}\nC=3") == {"A": "1"}
    with_cr = "B=" + "x" * (MAX_TOKEN_BYTES - 3) + "\r"
    assert parse_import(f"A=1\n{with_cr}\nC=3") == {"A": "1"}
    # a too-long line inside a multi-line value drops that value too
    assert parse_import(f'A=1\nM="""start\n{"y" * MAX_TOKEN_BYTES}\nend"""') == {"A": "1"}


def test_go_trim_space_differs_from_str_strip() -> None:
    assert go_trim_space("\x1ckey\x1f") == "\x1ckey\x1f"
    assert go_trim_space("\u00a0\u3000key\t\n") == "key"


# --- properties ------------------------------------------------------------------------------------------

_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True)
_safe_values = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\n\r#\"'"), max_size=40
).filter(lambda v: v == v.lstrip(" ") and not v.startswith('"""'))


@given(st.dictionaries(_names, _safe_values, max_size=8))
def test_unquoted_safe_values_round_trip(pairs: dict[str, str]) -> None:
    text = "".join(f"{k}={v}\n" for k, v in pairs.items())
    assert parse_import(text) == pairs


_line_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\n\r"), max_size=40
)


@given(_names, _line_text)
def test_double_quoted_values_keep_everything_inside(name: str, value: str) -> None:
    if value.startswith('""'):
        return  # '"""' would open a multi-line value
    assert parse_import(f'{name}="{value}"') == {name: value}


@given(st.text(max_size=200))
def test_never_raises_anything_but_value_error(text: str) -> None:
    try:
        result = parse_import(text)
    except ValueError as exc:
        assert "Secrets must be provided as NAME=VALUE pairs" in str(exc)
    else:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())
