"""Nix's base-32, checked against hashes Nix itself printed in both encodings."""

from __future__ import annotations

import pytest

from nixfly import nixhash

# One hash as `nix hash to-base32` and `nix hash to-base16` print it.
NIX32 = "1cvznnjyz117vyy3ddbjqjqb5z6rx7k49mp4q375nw1dwifwqxdc"
HEX = "ac75cc5de42d705bcec0e4d644e6e9d9fcb2b0c472b536bcdf2784efa5b57fb3"


def test_base32_decodes_as_nix_prints_it() -> None:
    assert nixhash.from_base32(NIX32, 32).hex() == HEX


def test_the_last_character_holds_the_lowest_bits() -> None:
    assert nixhash.from_base32("0" * 51 + "1", 32) == bytes([1]) + bytes(31)


def test_a_character_outside_nix_alphabet_is_refused() -> None:
    with pytest.raises(ValueError):
        nixhash.from_base32("e" * 52, 32)
