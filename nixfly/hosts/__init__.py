"""Deploy targets that are machines: this one (``local``), Linux hosts over SSH (``ssh://``), and groups of
them (``group``).

``target`` is the ``Target`` of one machine; ``group`` drives several in batches. ``activate`` runs a release
on one machine (``host``: here or over SSH) as a Nix profile generation (``profile``) with the fly toml's
environment (``environment``) in a detached process (``service``); ``hostlock`` keeps two deploys off one
host.
"""

from nixfly.hosts.group import GroupTarget
from nixfly.hosts.target import HostTarget

__all__ = ["GroupTarget", "HostTarget"]
