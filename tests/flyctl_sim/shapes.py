"""The JSON objects flyctl prints, built from state records (PascalCase GraphQL objects, snake_case
Machines-API objects), and the app/org lookups they need."""

from __future__ import annotations

import hashlib
from typing import Any

from flyctl_sim import health
from flyctl_sim.errors import FlyError
from flyctl_sim.state import State


def org(state: State, slug: str) -> dict[str, Any]:
    orgs: list[dict[str, Any]] = state["orgs"]
    for entry in orgs:
        if slug in (entry["slug"], entry.get("raw_slug")):
            return entry
    raise FlyError(f"organization {slug} not found")


def org_object(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "ID": entry["id"],
        "InternalNumericID": str(int(hashlib.sha256(entry["id"].encode()).hexdigest()[:5], 16)),
        "Name": entry["name"],
        "Slug": entry["slug"],
        "RawSlug": entry.get("raw_slug", entry["slug"]),
        "Type": entry["type"],
        "PaidPlan": False,
        "Billable": False,
        "Settings": None,
    }


def user_object(state: State) -> dict[str, Any]:
    user = state["user"]
    return {"ID": user["id"], "Name": user["name"], "Email": user["email"]}


def release_object(state: State, release: dict[str, Any]) -> dict[str, Any]:
    """``fly releases --json`` (apps/releases.go ``runReleases``: ``render.JSON`` of fly-go types.go
    ``Release``, no json tags so PascalCase). fly-go resource_releases.go ``GetAppReleasesMachines`` selects
    only id, version, description, reason, status, imageRef, stable, user and createdAt, so InProgress,
    DeploymentStrategy, Metadata and EvaluationID always print as Go zero values."""
    return {
        "ID": release["id"],
        "Version": release["version"],
        "Stable": release["status"] == "complete",
        "InProgress": False,
        "Reason": release["reason"],
        "Description": release["description"],
        "Status": release["status"],
        "DeploymentStrategy": "",
        "Metadata": None,
        "User": {**user_object(state), "Email": release.get("user_email") or state["user"]["email"]},
        "EvaluationID": "",
        "CreatedAt": release["created_at"],
        "ImageRef": release["image_ref"],
    }


def app_object(state: State, app: dict[str, Any]) -> dict[str, Any]:
    """``fly apps list --json`` / ``apps create --json`` element: every key present, zero/null if unset."""
    current = health.current_release(app)
    status = "deployed" if app["deployed"] else "pending"
    return {
        "ID": app["name"],
        "InternalNumericID": 0,
        "Name": app["name"],
        "State": status,
        "Status": status,
        "Deployed": app["deployed"],
        "Hostname": f"{app['name']}.fly.dev",
        "AppURL": f"https://{app['name']}.fly.dev",
        "Version": current["version"] if current else 0,
        "NetworkID": 0,
        "Network": app.get("network", "default"),
        "Organization": org_object(org(state, app["org"])),
        "Secrets": None,
        "CurrentRelease": release_object(state, current) if current else None,
        "Releases": None,
        "IPAddresses": None,
        "IPAddress": None,
        "Services": None,
        "Config": None,
        "Certificates": None,
        "Certificate": None,
        "PostgresAppRole": None,
        "Image": None,
        "ImageUpgradeAvailable": False,
        "ImageVersionTrackingEnabled": False,
        "ImageDetails": {"Registry": "", "Repository": "", "Tag": "", "Version": "", "Digest": ""},
        "LatestImageDetails": {"Registry": "", "Repository": "", "Tag": "", "Version": "", "Digest": ""},
        "PlatformVersion": "machines",
        "LimitedAccessTokens": None,
        "CNAMETarget": "",
    }


def volume_object(volume: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "name",
        "state",
        "size_gb",
        "region",
        "zone",
        "encrypted",
        "attached_machine_id",
        "attached_alloc_id",
        "created_at",
        "host_dedication_id",
        "snapshot_retention",
        "auto_backup_enabled",
    )
    shown = {k: volume.get(k) for k in keys}
    if volume.get("host_status"):  # `json:"host_status,omitempty"`
        shown["host_status"] = volume["host_status"]
    return shown


def machine_object(machine: dict[str, Any]) -> dict[str, Any]:
    """``fly machine list --json`` element (fly-go ``Machine``): the state keeps machines in this shape, plus
    simulator-only keys starting with ``_`` that are dropped here."""
    return {k: v for k, v in machine.items() if not k.startswith("_")}


def parse_image_ref(ref: str) -> dict[str, Any]:
    """``registry.fly.io/app:tag`` -> ``{registry, repository, tag, digest, labels}``."""
    name, _, digest = ref.partition("@")
    first, _, remainder = name.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = "docker.io", name if "/" in name else f"library/{name}"
    repository, tag = path, ""
    slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > slash:
        repository, tag = path[:colon], path[colon + 1 :]
    if not tag and not digest:
        tag = "latest"
    return {"registry": registry, "repository": repository, "tag": tag, "digest": digest, "labels": {}}
