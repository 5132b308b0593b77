"""Image lookup for ``deploy --image``: images the simulated Fly already knows, or a local test registry.

An image is found when it is (a) the image of any release of any app, (b) added by
``control.add_image`` or produced by a simulated build, or (c) on a registry at ``127.0.0.1:<port>`` /
``localhost:<port>`` that answers ``GET /v2/<repo>/manifests/<tag>`` with 200 for a Docker v2 or OCI
manifest Accept header. Anything else fails with ``could not find image "REF"``.
"""

from __future__ import annotations

import base64
from typing import Any

from flyctl_sim.shapes import parse_image_ref
from flyctl_sim.state import State

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


def normalise(ref: str) -> str:
    """One spelling per image: ``nginx`` == ``docker.io/library/nginx:latest``."""
    parts = parse_image_ref(ref)
    text = f"{parts['registry']}/{parts['repository']}"
    if parts["tag"]:
        text += f":{parts['tag']}"
    if parts["digest"]:
        text += f"@{parts['digest']}"
    return text


def known_images(state: State) -> set[str]:
    refs = set(state.get("known_images", []))
    for app in state["apps"].values():
        refs.update(r["image_ref"] for r in app.get("releases", []))
    return {normalise(r) for r in refs}


def _local_registry_digest(ref: str, password: str = "") -> str | None:
    """Ask a local registry for the manifest; returns its digest ("" if not reported) or None.

    A registry that demands basic auth is asked again as user ``x`` with ``password``: flyctl's own login
    (internal/command/auth/docker.go: ``x:`` + ``Tokens.Docker()``), standing in for Fly pulling the image.
    """
    import urllib.error  # imported here: urllib costs ~15 ms per run and most runs never need it
    import urllib.request

    parts = parse_image_ref(ref)
    host = parts["registry"]
    hostname, _, port = host.partition(":")
    if hostname not in ("127.0.0.1", "localhost") or not port.isdigit():
        return None
    reference = parts["digest"] or parts["tag"]
    headers = {"Accept": MANIFEST_TYPES}
    for attempt in range(2):
        request = urllib.request.Request(
            f"http://{host}/v2/{parts['repository']}/manifests/{reference}", headers=headers, method="GET"
        )
        try:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
            with opener.open(request, timeout=5) as response:
                if response.status != 200:
                    return None
                return response.headers.get("Docker-Content-Digest", "") or ""
        except urllib.error.HTTPError as exc:
            if exc.code != 401 or attempt or not password:
                return None
            basic = base64.b64encode(f"x:{password}".encode()).decode()
            headers = {**headers, "Authorization": f"Basic {basic}"}
        except (urllib.error.URLError, OSError, ValueError):
            # A registry that is down counts as "image not found" (the conservative reading).
            return None
    return None


def find_image(state: State, ref: str, password: str = "") -> dict[str, Any] | None:
    """``{"ref", "digest"}`` when the image exists, else None (``password``: the registry login to use)."""
    if normalise(ref) in known_images(state):
        return {"ref": ref, "digest": ""}
    digest = _local_registry_digest(ref, password)
    if digest is None:
        return None
    return {"ref": ref, "digest": digest}
