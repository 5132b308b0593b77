"""nixfly.probe: a health answer counts only when it comes from the expected release and program."""

from __future__ import annotations

import pytest
from helpers.fakes import Served, serving

from nixfly.probe import Expect, Verdict, http_ok, judge_answer

URL = "http://app/health"
BODY = b'{"status": "ok", "service": "web", "release": "r2"}'


def test_any_2xx_is_healthy_when_nothing_is_expected():
    assert judge_answer(URL, 204, b"", Expect()) == Verdict(True, f"GET {URL} → 204", 204)


@pytest.mark.parametrize("status", [301, 404, 500, 503])
def test_other_statuses_are_not(status):
    assert judge_answer(URL, status, BODY, Expect("r2")) == Verdict(False, f"GET {URL} → {status}", status)


def test_the_expected_release_and_service():
    verdict = judge_answer(URL, 200, BODY, Expect(release="r2", service="web"))
    assert verdict == Verdict(True, f"GET {URL} → 200 from release r2", 200)


@pytest.mark.parametrize(
    ("expect", "detail"),
    [
        (Expect(release="r3"), "from release 'r2', not the expected 'r3'"),
        (Expect(release="r2", service="ai-server"), "from service 'web', not the expected 'ai-server'"),
    ],
)
def test_an_answer_from_someone_else_is_not_healthy(expect, detail):
    verdict = judge_answer(URL, 200, BODY, expect)
    assert not verdict.healthy and verdict.detail == f"GET {URL} → 200 {detail}"


@pytest.mark.parametrize("body", [b"ok", b"[1, 2]", b"\xff\xfe", b'{"status": "ok"}'])
def test_an_answer_that_names_no_release_is_not_healthy(body):
    assert not judge_answer(URL, 200, body, Expect(release="r2")).healthy


def test_http_ok_asks_the_url():
    with serving(Served(body={"release": "r2"})) as health:
        assert http_ok(health.url, 2, Expect(release="r2")).healthy
        health.status = 503
        assert http_ok(health.url, 2, Expect(release="r2")) == Verdict(False, f"GET {health.url} → 503", 503)
    assert health.hits == 2


def test_http_ok_when_nothing_answers():
    verdict = http_ok("http://127.0.0.1:9/health", 1)
    assert not verdict.healthy and verdict.detail.startswith("GET http://127.0.0.1:9/health failed: ")
    assert verdict.status is None
    assert not http_ok("http://", 1).healthy  # no host: urllib refuses it
