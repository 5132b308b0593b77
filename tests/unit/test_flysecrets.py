"""nixfly.flysecrets: every value the encoder accepts for a flyctl release comes back byte for byte from that
release's parser (the simulator's ports of ``parseSecrets``), realistic credentials are carried, and only what
no form of that release can carry is refused, by name, without the value, naming the first release that
can."""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from pathlib import Path

import pytest
from flyctl_sim import control
from flyctl_sim.importfmt import GoPanic, parse_import
from hypothesis import given, settings
from hypothesis import strategies as st

from nixfly.errors import NixflyError
from nixfly.flysecrets import MAX_LINE_BYTES, PARSERS, Release, encode, encode_all, parser_for

NEWEST: Release = (0, 4, 87)
# Each parser's first release, and the releases issue 19 measured (0.3.172 is the nixos-25.05 kind).
RELEASES: list[Release] = [p.since for p in PARSERS] + [(0, 3, 172), (0, 4, 5), NEWEST]

# --- the property: 0 altered ------------------------------------------------------------------------------

SEED = 20260806
COUNT = 12_000
# Weighted towards what the parser treats specially; the tail keeps ordinary text in the mix.
PIECES = (
    ["#"] * 6
    + ['"'] * 8
    + ["'"] * 4
    + ['"""'] * 3
    + ["="] * 2
    + [" "] * 5
    + ["\t"] * 2
    + ["\n"] * 4
    + ["\r"] * 2
    + ["\r\n"]
    + ["é", "✓", "\u3000", "\xa0", "日本", "\x85"]
    + ["a", "b", "x", "{", "}", ":", ",", "\\", "$", "-", "0"] * 2
)


def _random_value(rng: random.Random) -> tuple[str, str]:
    """A value and its kind: token soup (one line or several), or JSON (compact, or pretty = multi-line)."""
    kind = rng.random()
    if kind < 0.7:
        value = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24)))
        return value, "soup, several lines" if "\n" in value else "soup, one line"
    obj = {
        "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4))): "".join(
            rng.choice(PIECES) for _ in range(rng.randint(0, 10))
        )
        for _ in range(rng.randint(1, 4))
    }
    pretty = kind >= 0.85
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.5, indent=rng.choice([2, 4]) if pretty else None)
    if pretty:
        return text + rng.choice(["", "\n"]), "JSON, pretty"
    return rng.choice(["", " ", "  "]) + text + rng.choice(["", " "]), "JSON, compact"


def _forms(value: str) -> list[str]:
    """Every form the import format offers: bare, "…", '…', \"\"\"…\"\"\"."""
    return [value, f'"{value}"', f"'{value}'", f'"""{value}"""']


def _parses_back(entry: str, name: str, value: str, release: Release = NEWEST) -> bool:
    try:
        return parse_import(entry + "\n", release) == {name: value}
    except (ValueError, GoPanic):
        return False


def _check_one(name: str, value: str, release: Release) -> str | None:
    """The entry for ``value`` after checking it round-trips through ``release``'s port, or None after
    checking the refusal: by name, without the value, naming ``release`` and the first later release whose
    port carries one of the forms (or none when no later release can)."""
    try:
        entry = encode(name, value, release)
    except NixflyError as exc:
        message = str(exc)
        assert name in message and MARK not in message  # the REFUSED values carry MARK: never shown
        if "\0" in value or "\udcff" in value:
            return None  # refused whatever the release: no environment carries it
        assert "v" + ".".join(map(str, release)) in message
        assert not any(_parses_back(f"{name}={form}", name, value, release) for form in _forms(value)), (
            message
        )
        later = [p for p in PARSERS if p.since > parser_for(release).since]
        carriers = [
            p for p in later if any(_parses_back(f"{name}={f}", name, value, p.since) for f in _forms(value))
        ]
        if carriers:
            assert f"flyctl {carriers[0].label} is the first release that can carry it" in message
        else:
            assert "is the first release" not in message
        return None
    assert _parses_back(entry, name, value, release), (release, value)
    return entry


@pytest.mark.parametrize("release", RELEASES, ids=[".".join(map(str, r)) for r in RELEASES])
@settings(max_examples=300, deadline=None)
@given(value=st.lists(st.sampled_from(PIECES), max_size=24).map("".join))
def test_each_release_round_trips_or_refuses_every_value(release: Release, value: str) -> None:
    _check_one("HYPO", value, release)


def test_every_accepted_value_round_trips_and_every_refused_one_has_no_form() -> None:
    rng = random.Random(SEED)
    started = time.perf_counter()
    accepted: dict[str, str] = {}
    altered = 0
    seen: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for index in range(COUNT):
        value, kind = _random_value(rng)
        seen[kind] += 1
        name = f"S{index}"
        try:
            entry = encode(name, value, NEWEST)
        except NixflyError as exc:
            refused[kind] += 1
            message = str(exc)
            reasons[re.sub(r"line \d+", "line N", exc.message.split(": ", 1)[1])[:60]] += 1
            assert name in message
            if len(value) >= 4:
                assert value not in message
            # refused only when NO form carries it
            assert not any(_parses_back(f"{name}={form}", name, value) for form in _forms(value)), message
            continue
        if not _parses_back(entry, name, value):
            altered += 1
        accepted[name] = value
    # Whole payloads too: no entry may bleed into the next.
    names = list(accepted)
    for start in range(0, len(names), 7):
        batch = {name: accepted[name] for name in names[start : start + 7]}
        assert parse_import(encode_all(batch, NEWEST)) == batch
    seconds = time.perf_counter() - started

    total = sum(refused.values())
    print(f"\n{COUNT} values (seed {SEED}): {len(accepted)} carried, {total} refused ({total / COUNT:.2%}),")
    print(f"{altered} altered, {seconds:.2f}s")
    for kind, count in sorted(seen.items()):
        print(f"  {kind}: {count}, refused {refused[kind]} ({refused[kind] / count:.2%})")
    for reason, count in reasons.most_common():
        print(f"  refused {count}: {reason}")
    assert COUNT >= 10_000 and altered == 0
    # Every one-line value has a form, and JSON (whose strings escape CR and quotes) always fits one.
    assert refused["soup, one line"] == refused["JSON, compact"] == refused["JSON, pretty"] == 0
    assert seen["soup, several lines"] > 1000 and seen["JSON, pretty"] > 1000


# --- realistic credentials are carried ----------------------------------------------------------------------

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----\n"
)
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "demo#1",
    "private_key_id": 'k"e#y',
    "private_key": PEM,
    "client_email": "svc@demo.iam.gserviceaccount.com",
    "password": "p#ss",
}

CARRIED = {
    "issue example": '{"user":"a","password":"p#ss"}',
    "compact JSON, # in strings": json.dumps(SERVICE_ACCOUNT, separators=(",", ":")),
    "compact JSON, non-ASCII": json.dumps({"name": "ünï#©ødé", "q": '"'}, ensure_ascii=False),
    "pretty JSON": json.dumps(SERVICE_ACCOUNT, indent=2),
    "pretty JSON with trailing newline": json.dumps(SERVICE_ACCOUNT, indent=4) + "\n",
    "PEM": PEM,
    "PEM without final newline": PEM.rstrip("\n"),
    "token with double quotes": 'abc"def"ghi',
    "token quoted whole": '"quoted"',
    "token single-quoted whole": "'single'",
    "token starting with two quotes": '""abc',
    "lone double quote": '"',
    "lone single quote": "'",
    "triple quote": '"""',
    "apostrophe": "it's",
    "odd quote before hash": 'a"#b',
    "even quotes before hash": 'a""#b',
    "hash first": "#secret",
    "leading spaces": "   lead",
    "trailing spaces": "trail   ",
    "both spaces": "  both  ",
    "spaces around a hash": " # spaced ",
    "tab": "\tindented",
    "dollar and backslash": "$HOME\\n${X}",
    "equals": "a=b==",
    "empty": "",
    "CR inside one line": "a\rb",
    "CR at the end of one line": "ab\r",
    "multi-line with # and quotes below the first line": 'first\n# not a comment\n"q" \'x\' """x\n\nlast',
    "multi-line first line starting with #": "# config\nkey = value",
    "multi-line ending in a quote": 'one\ntwo"',
    "multi-line, last line ends with a CR": "one\ntwo\r",
}


@pytest.mark.parametrize("value", CARRIED.values(), ids=CARRIED.keys())
def test_realistic_credentials_are_carried(value: str) -> None:
    entry = encode("CREDENTIAL", value, NEWEST)
    assert parse_import(entry + "\n") == {"CREDENTIAL": value}


# The adversarial values: every carried credential above, every refused value below, and the tricky values the
# integration tests deploy (test_bad_inputs.py), through every release's parser.
ADVERSARIAL = [
    *CARRIED.values(),
    "to#ken \"with\" 'quotes' = and € ✓",
    "  leading and trailing  ",
    "line one\nline two # not a comment\n\nlast",
]


@pytest.mark.parametrize("release", RELEASES, ids=[".".join(map(str, r)) for r in RELEASES])
def test_adversarial_values_round_trip_or_are_refused_naming_the_release_that_can(release: Release) -> None:
    values = ADVERSARIAL + [value for value, _, _ in REFUSED]
    carried = {}
    for index, value in enumerate(values):
        if _check_one(f"V{index}", value, release) is not None:
            carried[f"V{index}"] = value
    assert parse_import(encode_all(carried, release), release) == carried  # no entry bleeds into the next


def test_an_unreadable_version_is_the_oldest_parser() -> None:
    assert parser_for(None) == parser_for((0, 0, 1)) == PARSERS[0]
    assert encode("A", "plain", None) == "A=plain"  # v0.0.475 keeps quotes: "…" would read back quoted
    with pytest.raises(NixflyError) as info:
        encode("A", '"""', None)
    assert "unknown version" in str(info.value) and "v0.3.226 is the first release" in str(info.value)


def test_the_dev_shell_kind_of_flyctl_gets_its_own_forms() -> None:
    """0.3.172 (nixos-25.05): '…' is not stripped and a one-line \"\"\"…\"\"\" opens a multi-line value."""
    assert encode("A", "'single'", (0, 3, 172)) == "A=\"'single'\""
    with pytest.raises(NixflyError, match=r"flyctl v0\.3\.172.*v0\.3\.226 is the first release"):
        encode("A", '""#x', (0, 3, 172))
    assert encode("A", '""#x', (0, 3, 226)) == 'A="""""#x"""'


def test_ordinary_values_look_ordinary() -> None:
    assert encode("A", "plain", NEWEST) == 'A="plain"'
    assert encode("A", '{"k":"v#1"}', NEWEST) == 'A={"k":"v#1"}'  # "…" would be cut: four quotes before #
    assert encode("A", ' a"#b', NEWEST) == "A=' a\"#b'"  # "…" cut (2 quotes before #), bare loses the space
    assert encode("A", '""#x', NEWEST) == 'A="""""#x"""'  # "…" would open a triple, bare and \'…\' are cut
    assert encode("A", "x\ny", NEWEST) == 'A="""x\ny"""'


def test_the_whole_payload_round_trips_through_the_simulated_flyctl(tmp_path: Path) -> None:
    home = control.init(tmp_path / "fly")
    control.create_app(home, "demo")
    values = {f"V{i}": value for i, value in enumerate(CARRIED.values()) if value}  # flyctl drops nothing
    proc = control.run(home, "secrets", "import", "-a", "demo", "--stage", stdin=encode_all(values, NEWEST))
    assert proc.returncode == 0, proc.stderr
    assert control.secrets(home, "demo") == values


def test_long_json_just_under_the_limit_is_carried() -> None:
    blob = json.dumps({"k": "v" * (MAX_LINE_BYTES - 100)})
    entry = encode("GOOGLE_APPLICATION_CREDENTIALS_JSON", blob, NEWEST)
    assert len(entry.encode()) <= MAX_LINE_BYTES
    assert parse_import(entry + "\n") == {"GOOGLE_APPLICATION_CREDENTIALS_JSON": blob}


# --- refusals: by name, before anything is sent, never quoting the value ----------------------------------

MARK = "s3cr3t-MARK"
REFUSED = [
    (f"{MARK}\r\nline2", "line 1 of it ends with a carriage return", "LF"),
    (f"{MARK}\nline2\r\nline3", "line 2 of it ends with a carriage return", "LF"),
    (f'{MARK}\ninner"""\nlast', 'line 2 of it ends with """', 'does not end in """'),
    (f'{MARK}"""\nlast', 'its first line ends with """', "start the value"),
    (f'{{"p": "{MARK}#x",\n "q": 1}}', 'its first line holds a "#"', "keep '#' off the first line"),
    ("x" * MAX_LINE_BYTES + MARK, "64 KiB or longer", "shorten"),
    (f"{MARK}\n" + "y" * MAX_LINE_BYTES, "line 2 of it is 64 KiB or longer", "shorten"),
    (f"{MARK}\0", "NUL byte", "remove the NUL"),
    (f"{MARK}\udcff", "not valid UTF-8", "UTF-8 text"),
]


@pytest.mark.parametrize(("value", "why", "fix"), REFUSED)
def test_values_no_form_can_carry_are_refused_by_name(value: str, why: str, fix: str) -> None:
    with pytest.raises(NixflyError) as info:
        encode("SECRET_NAME", value, NEWEST)
    message = str(info.value)
    assert "SECRET_NAME" in message and why in message and fix in message
    assert MARK not in message and "nothing was sent" in message


def test_the_set_from_stdin_hint_appears_only_when_set_would_store_the_value_unchanged() -> None:
    with pytest.raises(NixflyError) as info:
        encode("CERT", "a\r\nb", NEWEST)
    assert "flyctl secrets set --stage CERT=- < FILE" in str(info.value)
    for untrimmed in (" a\r\nb", "a\r\nb\n"):  # set.go trims stdin with strings.TrimSpace
        with pytest.raises(NixflyError) as info:
            encode("CERT", untrimmed, NEWEST)
        assert "secrets set" not in str(info.value)
    with pytest.raises(NixflyError) as info:
        encode("BIG", "x" * (MAX_LINE_BYTES + 2), NEWEST)  # more than set's 64 KiB of stdin
    assert "secrets set" not in str(info.value)


def test_refusal_happens_before_any_payload_is_built() -> None:
    with pytest.raises(NixflyError, match="BAD"):
        encode_all({"GOOD": "fine", "BAD": "x" * (MAX_LINE_BYTES + 5)}, NEWEST)


def test_names_are_validated() -> None:
    with pytest.raises(NixflyError, match="invalid variable name"):
        encode("NOT VALID", "x", NEWEST)
