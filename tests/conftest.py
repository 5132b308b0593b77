"""Shared by every test: Nix runs offline against the nixpkgs stand-in unless the caller says otherwise."""

from __future__ import annotations

import os

from helpers.project import offline_nix_options

# CI exports NIXFLY_NIX_OPTIONS itself; a developer running pytest by hand gets the same offline setup.
os.environ.setdefault("NIXFLY_NIX_OPTIONS", offline_nix_options())
