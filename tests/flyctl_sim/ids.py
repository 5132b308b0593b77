"""Identifiers shaped like Fly's: machine ids, volume ids, ULIDs, release ids, request ids, names."""

from __future__ import annotations

import hashlib
import secrets
import string
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ALNUM = string.ascii_letters + string.digits
_ADJECTIVES = (
    "shy",
    "bold",
    "calm",
    "dry",
    "late",
    "wild",
    "quiet",
    "proud",
    "young",
    "misty",
    "dark",
    "cool",
)
_NOUNS = (
    "frost",
    "sun",
    "river",
    "leaf",
    "pine",
    "cloud",
    "meadow",
    "smoke",
    "field",
    "dawn",
    "snow",
    "wave",
)


def ulid() -> str:
    """A 26-character Crockford-base32 ULID: 48 bits of milliseconds, 80 random bits."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, idx = divmod(value, 32)
        chars.append(_CROCKFORD[idx])
    return "".join(reversed(chars))


def machine_id() -> str:
    """14 lowercase hex characters, like ``3d8d9e1f9e2d89``."""
    return secrets.token_hex(7)


def volume_id() -> str:
    return "vol_" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(16))


def node_id(length: int = 24) -> str:
    """An opaque GraphQL-style id (releases, apps' organisations, evaluations)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def request_id() -> str:
    return f"{ulid()}-iad"


def friendly_name() -> str:
    """``shy-frost-4521``: the shape of Fly machine names and ``--generate-name`` app names."""
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(9000) + 1000}"


def image_digest(ref: str) -> str:
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


def private_ip(mid: str) -> str:
    return f"fdaa:0:1:a7b:{mid[:4]}:{mid[4:8]}:{mid[8:12]}:2"


def token(prefix: str = "FlyV1 fm2_") -> str:
    return prefix + secrets.token_urlsafe(48)
