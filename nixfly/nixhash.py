"""Nix's own hash encodings, which deps (fixed-output hashes) and sbom (NAR hashes) both read."""

from __future__ import annotations

# Nix's own base-32 alphabet (no e, o, u, t), for the "sha256:<base32>" hashes older Nix prints.
BASE32 = "0123456789abcdfghijklmnpqrsvwxyz"


def from_base32(text: str, size: int) -> bytes:
    """Nix's base-32 (libutil hash.cc, parseHash32): the last character holds the lowest five bits."""
    out = bytearray(size)
    for n, char in enumerate(reversed(text)):
        digit = BASE32.index(char)
        i, j = divmod(n * 5, 8)
        out[i] |= (digit << j) & 0xFF
        if i + 1 < size:
            out[i + 1] |= digit >> (8 - j)
    return bytes(out)
