"""Time as flyctl prints it (RFC 3339, UTC, second precision) and Go duration parsing."""

from __future__ import annotations

import datetime as dt

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def rfc3339(when: dt.datetime | None = None) -> str:
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(when: dt.datetime | None = None) -> str:
    """Log timestamps carry sub-second precision."""
    stamp = when or dt.datetime.now(dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}000Z"


def _leading(text: str, *, digits: bool) -> str:
    """The longest prefix of ASCII digits (``digits=True``) or of anything but digits and dots."""
    end = 0
    while end < len(text) and (text[end] in "0123456789") == digits and (digits or text[end] != "."):
        end += 1
    return text[:end]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` in seconds; raises ValueError carrying Go's error text."""
    invalid = ValueError(f"time: invalid duration {_quote(text)}")
    body, sign = text, 1.0
    if body[:1] in ("-", "+"):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise invalid
    total = 0.0
    while body:
        if not (body[0] == "." or body[0].isdigit()):
            raise invalid
        whole = _leading(body, digits=True)
        body = body[len(whole) :]
        frac = ""
        has_frac = False
        if body.startswith("."):
            body = body[1:]
            frac = _leading(body, digits=True)
            body = body[len(frac) :]
            has_frac = bool(frac)
        if not whole and not has_frac:
            raise invalid
        unit = _leading(body, digits=False)
        body = body[len(unit) :]
        if not unit:
            raise ValueError(f"time: missing unit in duration {_quote(text)}")
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {_quote(unit)} in duration {_quote(text)}")
        total += float(f"{whole or '0'}.{frac or '0'}") * _UNITS[unit]
    return sign * total


def parse_timeout_flag(text: str) -> float | None:
    """flyctl's ``--wait-timeout``-style value: a Go duration, a plain number of seconds, or ``none``.

    Returns seconds, or None for ``none``. flyctl ``internal/command/deploy/deploy.go`` ``parseDurationFlag``:
    whole seconds only when Go reports a missing unit; callers turn any ValueError into flyctl's own message.
    """
    if text == "none":
        return None
    try:
        return parse_go_duration(text)
    except ValueError as exc:
        if "missing unit" not in str(exc):
            raise
        try:
            return float(int(text, 10))
        except ValueError:
            raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax') from None


def format_go_duration(seconds: float) -> str:
    """Go's ``Duration.String`` for whole seconds: ``5m0s``, ``1h0m0s``, ``30s``."""
    total = int(seconds)
    hours, rem = divmod(total, 3600)
    minutes, secs = divmod(rem, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
