"""One HTTP health probe, and the check that the answer comes from the release nixfly just started.

The apps say who they are in ``GET /health``: ``{"status": "ok", "service": "web", "release": "<id>"}``.
``release`` is ``NIXFLY_RELEASE`` on local and ssh targets (a fresh id per activation) and
``FLY_IMAGE_REF`` on Fly (set by Fly in every Machine to the image it runs). A 2xx from anything else — the
previous release still bound to the port, another program, the other process of the same release — is not
"healthy": the gate must know it talks to the new release.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

# Only this much of a health answer is read: enough for the JSON, never a whole page.
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    detail: str
    # The HTTP status that answered, if anything did.
    status: int | None = None


@dataclass(frozen=True)
class Expect:
    """Who must answer: the release id (and the program) the body must name; empty means any."""

    release: str = ""
    service: str = ""


def judge_answer(url: str, status: int, body: bytes, expect: Expect) -> Verdict:
    """A probe's answer, judged: 2xx, and from the expected release and program."""
    seen = f"GET {url} → {status}"
    if not 200 <= status < 300:
        return Verdict(False, seen, status)
    if not (expect.release or expect.service):
        return Verdict(True, seen, status)
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return Verdict(False, f"{seen} but not the JSON that names its release", status)
    for key, wanted in (("service", expect.service), ("release", expect.release)):
        got = data.get(key)
        if wanted and got != wanted:
            return Verdict(False, f"{seen} from {key} {got!r}, not the expected {wanted!r}", status)
    return Verdict(True, f"{seen} from release {expect.release or '?'}", status)


def http_ok(url: str, timeout: float, expect: Expect | None = None) -> Verdict:
    request = urllib.request.Request(url, headers={"User-Agent": "nixfly-health"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return judge_answer(url, response.status, response.read(MAX_BODY), expect or Expect())
    except urllib.error.HTTPError as exc:
        return Verdict(False, f"GET {url} → {exc.code}", exc.code)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Verdict(False, f"GET {url} failed: {reason}")
