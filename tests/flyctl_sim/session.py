"""Authentication: which token a run uses and whether the simulated API accepts it."""

from __future__ import annotations

from flyctl_sim.errors import FlyError
from flyctl_sim.invocation import Invocation

NO_TOKEN = "no access token available. Please login with 'flyctl auth login'"
BAD_TOKEN = "failed retrieving current user: You must be authenticated to view this."


def token_in_use(inv: Invocation) -> str:
    """``-t/--access-token``, ``FLY_ACCESS_TOKEN`` (wins over ``FLY_API_TOKEN``), then the saved login."""
    for candidate in (
        inv.parsed.values.get("access-token", ""),
        inv.env.get("FLY_ACCESS_TOKEN", ""),
        inv.env.get("FLY_API_TOKEN", ""),
        inv.state["auth"].get("saved_token") or "",
    ):
        if candidate and candidate.strip():
            return candidate.strip()
    return ""


def require_session(inv: Invocation) -> None:
    """flyctl's ``RequireSession``: a token must exist and be known to the API."""
    token = token_in_use(inv)
    if not token:
        raise FlyError(NO_TOKEN)
    info = inv.state["auth"]["tokens"].get(token)
    if info is None:
        raise FlyError(BAD_TOKEN)
    inv.token = token
    inv.token_app = info.get("app") if info.get("kind") == "deploy" else None


def docker_password(token: str) -> str:
    """What flyctl logs in to a registry with: fly-go tokens/tokens.go ``Tokens.Docker()`` of ``token``.

    ``StripAuthorizationScheme`` (TrimSpace; drop a leading ``FlyV1``/``Bearer`` word, any case, repeatedly),
    ``Parse`` (split at ``,``, TrimSpace; fm1r/fm1a/fm2 before the first ``_`` is a macaroon), then
    ``normalized(false, false)``: the macaroons joined with ``,`` if any, else the other tokens.
    """
    token = token.strip()
    while True:
        scheme, sep, rest = token.partition(" ")
        if not sep or scheme.strip().lower() not in ("flyv1", "bearer"):
            break
        token = rest.strip()
    parts = [part.strip() for part in token.split(",")]
    macaroons = [part for part in parts if part.split("_", 1)[0] in ("fm1r", "fm1a", "fm2")]
    return ",".join(macaroons or [part for part in parts if part not in macaroons])
