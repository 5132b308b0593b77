"""nixfly.runner.Redactor: what a registered secret masks (kept apart from test_runner.py, which is about
running commands)."""

from __future__ import annotations

import json

from nixfly.runner import MIN_REDACT_LENGTH, Redactor

PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nbm90LWEtcmVhbC1rZXk=\n"
    "-----END PRIVATE KEY-----\n"
)
CREDENTIALS = {
    "type": "service_account",
    "private_key_id": "a1b2c3d4e5f6",
    "private_key": PEM,
    "client_email": "svc@demo.iam.gserviceaccount.com",
    "nested": {"tokens": ["nested-token-1", "ünïcödé-tökén"]},
    "n": 123456789,
    "ok": True,
    "id": "ab",
}


def test_whole_values_and_each_line_are_masked() -> None:
    r = Redactor()
    r.add("first-line-secret\nsecond-line-secret")
    r.add("abc")  # too short to mask safely
    out = r("a first-line-secret b second-line-secret abc")
    assert out == "a *** b *** abc"


def test_each_string_leaf_of_a_json_value_is_masked() -> None:
    r = Redactor()
    r.add(json.dumps(CREDENTIALS, separators=(",", ":")))
    line = 'auth failed for "svc@demo.iam.gserviceaccount.com" with key id a1b2c3d4e5f6 (nested-token-1)'
    assert r(line) == 'auth failed for "***" with key id *** (***)'
    assert "ünïcödé-tökén" not in r("token ünïcödé-tökén")
    # a multi-line leaf: whole, line by line, and JSON-escaped as a log quoting the file would show it
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in r("key line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")
    escaped = json.dumps(PEM)[1:-1]
    assert r(f'"private_key": "{escaped}"') == '"private_key": "***"'
    assert "\\u00fcn" not in r(json.dumps({"t": "ünïcödé-tökén"}))  # ensure_ascii form too


def test_short_leaves_numbers_and_keys_are_not_masked() -> None:
    r = Redactor()
    r.add(json.dumps(CREDENTIALS, separators=(",", ":")))
    assert len("ab") < MIN_REDACT_LENGTH
    assert r('"id": "ab", "n": 123456789, "ok": true, key private_key_id') == (
        '"id": "ab", "n": 123456789, "ok": true, key private_key_id'
    )


def test_a_pretty_printed_json_value_is_masked_by_leaf_and_by_line() -> None:
    r = Redactor()
    r.add(json.dumps(CREDENTIALS, indent=2))
    assert r("mail svc@demo.iam.gserviceaccount.com") == "mail ***"
    assert r('  "n": 123456789,') == "  ***"  # each line of a multi-line value, as before


def test_values_that_are_not_json_objects_are_only_masked_whole() -> None:
    r = Redactor()
    r.add('{"broken": "json-leaf-value"')  # not JSON: masked whole, no leaves
    r.add('"just-a-quoted-string"')
    assert r("json-leaf-value") == "json-leaf-value"
    assert r('{"broken": "json-leaf-value"') == "***"


def test_json_inside_a_json_string_is_unpacked() -> None:
    r = Redactor()
    inner = json.dumps({"password": "inner-password-9"})
    r.add(json.dumps({"config": inner}))
    assert r("login with inner-password-9") == "login with ***"
