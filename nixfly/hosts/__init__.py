"""Deploy targets that are machines: this one (``local``) or Linux hosts over SSH (``ssh://``).

``target`` is the ``Target``; ``activate`` runs a release on one machine (``machine``: here or over SSH)
as a Nix profile generation (``profile``) with the fly toml's environment (``environment``) in a detached
process (``service``).
"""

from nixfly.hosts.target import HostTarget

__all__ = ["HostTarget"]
