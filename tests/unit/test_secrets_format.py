"""Secrets survive the trip to flyctl: serialised by nixfly, parsed by the simulator's faithful parser."""

from __future__ import annotations

import json

import pytest
from flyctl_sim.importfmt import parse_import
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nixfly.errors import NixflyError
from nixfly.secrets import MAX_LINE_BYTES, encode, encode_all

NAMES = st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True)
# Everything but the characters flyctl's line scanner cannot carry (NUL is not an env value anyway).
VALUES = st.text(st.characters(blacklist_characters="\r\0", blacklist_categories=("Cs",)), max_size=200)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
).map(lambda obj: json.dumps(obj, separators=(",", ":"), ensure_ascii=False))


def carried(value: str) -> bool:
    try:
        encode("X", value)
    except NixflyError:
        return False
    return True


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(NAMES, VALUES | JSON_VALUES, min_size=1, max_size=6))
@example({"A": "ab#cd", "B": '"quoted"', "C": "'single'", "D": "  lead", "E": "x=y=z", "F": "ünï©ødé ✓"})
@example({"M": "line1\nline2\n\nlast", "N": 'ends with """\nand more', "O": "\n", "P": "a\\nb\\\\"})
def test_every_carried_value_round_trips(values):
    sendable = {k: v for k, v in values.items() if carried(v)}
    if not sendable:
        return
    assert parse_import(encode_all(sendable)) == sendable


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ('""starts with two quotes', 'may not start with ""'),
        ('"', 'lone "'),
        ("a\r\nb", "carriage return"),
        ('one\ninner"""\nlast', 'inner line ends with """'),
        ("x" * MAX_LINE_BYTES, "64 KiB"),
        ("nul\0", "NUL"),
    ],
)
def test_values_flyctl_cannot_carry_are_refused_by_name(value, why):
    with pytest.raises(NixflyError) as info:
        encode("SECRET_NAME", value)
    assert why in str(info.value) and "SECRET_NAME" in str(info.value)
    assert value not in str(info.value) or len(value) < 3


def test_refusal_happens_before_any_payload_is_built():
    with pytest.raises(NixflyError):
        encode_all({"GOOD": "fine", "BAD": "x" * (MAX_LINE_BYTES + 5)})


def test_long_json_just_under_the_limit_is_carried():
    blob = json.dumps({"k": "v" * (MAX_LINE_BYTES - 100)})
    entry = encode("GOOGLE_APPLICATION_CREDENTIALS_JSON", blob)
    assert len(entry.encode()) <= MAX_LINE_BYTES
    assert parse_import(entry + "\n") == {"GOOGLE_APPLICATION_CREDENTIALS_JSON": blob}
