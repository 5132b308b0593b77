"""Where an SSH host is: ``user@host[:port]`` (also ``ssh://…``), parsed and checked before any connection.

Kept apart from ``remote`` (which brings Fabric in when it connects) so that checking a name (``--on``,
``--target ssh://…``, ``nixfly.groups`` in invoke.yaml) costs nothing and config can do it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nixfly.errors import NixflyError, brief

# user@host[:port], also accepted with an ssh:// prefix. Neither part may start with "-": both end up on an
# ssh command line (nix copy), where that would read as an option.
ENDPOINT = re.compile(
    r"(?:ssh://)?(?:(?P<user>[A-Za-z0-9_.][A-Za-z0-9_.-]*)@)?"
    r"(?P<host>[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
)


@dataclass(frozen=True)
class Endpoint:
    """Where to connect: ``user@host[:port]``; an empty user or port means "as the ssh config says"."""

    host: str
    user: str = ""
    port: int | None = None

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.host}{port}"

    @property
    def store_uri(self) -> str:
        """Nix's ssh store for this host; the port travels in NIX_SSHOPTS (ssh:// store URIs have none)."""
        user = f"{self.user}@" if self.user else ""
        return f"ssh://{user}{self.host.strip('[]')}"


def parse_endpoint(text: str) -> Endpoint:
    # fullmatch, not match with `$`: a trailing newline must not pass.
    match = ENDPOINT.fullmatch(text) if isinstance(text, str) else None
    port = int(match["port"]) if match and match["port"] else None
    if not match or (port is not None and not 0 < port < 65536):
        raise NixflyError(
            f"invalid SSH host {brief(text)}",
            "use user@host or user@host:port (e.g. --on root@build.example.org:2222)",
        )
    return Endpoint(host=match["host"], user=match["user"] or "", port=port)
