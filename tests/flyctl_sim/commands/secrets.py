"""``fly secrets set|import|unset|list|deploy``.

Values are stored in state (the simulated server) with a status: ``Staged`` until machines run them,
``Deployed`` afterwards. Without ``--stage`` a change to a deployed app creates a release and restarts every
machine with the currently deployed config; a never-deployed app only stages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flyctl_sim import clock, importfmt, render, rollout
from flyctl_sim.cobra import Command, at_least
from flyctl_sim.commands.common import APP_FLAGS, DETACH, DNS_CHECKS, JSON, STAGE
from flyctl_sim.commands.deploy import EMIT_RELEASE_JSON_SINCE
from flyctl_sim.errors import FlyError
from flyctl_sim.invocation import Invocation
from flyctl_sim.state import State

SHARED = (*APP_FLAGS, STAGE, DETACH, DNS_CHECKS)
STDIN_LIMIT = 64 * 1024
STAGED_MESSAGE = (
    "Secrets have been staged, but not set on VMs. Deploy or update machines in this app for the secrets to "
    "take effect."
)
FIRST_DEPLOY_MESSAGE = "Secrets are staged for the first deployment"

MACHINES_API_SECRETS = (0, 3, 178)
SECRET_STATUS = (0, 4, 6)


def _stored_value(text: str) -> str:
    """What the API keeps: stdin bytes (decoded with surrogateescape) re-read as UTF-8, invalid -> U+FFFD."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text


def digest(value: str, version: tuple[int, ...]) -> str:
    """Callers must treat digests as OPAQUE: old eras showed the MD5 hex of the value, newer ones a 16-hex
    digest of an unpublished algorithm (here: the first 16 hex digits of SHA-256)."""
    raw = value.encode("utf-8", "surrogatepass")
    if version < MACHINES_API_SECRETS:
        return hashlib.md5(raw).hexdigest()
    return hashlib.sha256(raw).hexdigest()[:16]


def store(app: dict[str, Any], values: dict[str, str]) -> None:
    now = clock.rfc3339()
    for name, value in values.items():
        previous = app["secrets"].get(name)
        app["secrets"][name] = {
            "value": _stored_value(value),
            "status": "Staged",
            "created_at": previous["created_at"] if previous else now,
            "updated_at": now,
        }


def deploy_secrets(inv: Invocation, app: dict[str, Any], *, stage: bool, detach: bool) -> None:
    """flyctl's ``DeploySecrets``: stage, or restart every machine with the deployed config."""
    if stage:
        inv.print(STAGED_MESSAGE)
        return
    if not app["deployed"] and not app["machines"]:
        inv.print(FIRST_DEPLOY_MESSAGE)
        return
    restart(inv, app, detach=detach, reason="change_secrets", description="Update secrets")


def restart(inv: Invocation, app: dict[str, Any], *, detach: bool, reason: str, description: str) -> None:
    """flyctl ``internal/command/secrets/secrets.go`` ``DeploySecrets``: a restart-only machine deployment
    (``deploy.NewMachineDeployment`` with ``RestartOnly``) of the deployed config and image: a new release,
    every machine updated, stopped ones left stopped (``rollout.py``); the release JSON line too when
    FLY_EMIT_RELEASE_JSON is set (it is printed by ``DeployMachinesApp``)."""
    state: State = inv.state
    cfg = app.get("config") or {}
    emit = inv.env.get("FLY_EMIT_RELEASE_JSON", "") != "" and inv.version() >= EMIT_RELEASE_JSON_SINCE
    rollout.deploy(
        state,
        app,
        cfg=cfg,
        args=rollout.DeployArgs(
            image_ref=app["image"],
            strategy="rolling",
            skip_health=detach,
            skip_smoke=detach,
            restart_only=True,
            reason=reason,
            description=description,
            consume_plan=False,  # health plans are consumed by `fly deploy` only
            emit_release_json=emit,
            user_email=state["user"]["email"],
        ),
        io=rollout.Output(inv.print, inv.warn),
        primary_region=str(cfg.get("primary_region") or rollout.DEFAULT_REGION),
    )


def run_set(inv: Invocation) -> None:
    app = inv.app()
    values: dict[str, str] = {}
    for arg in inv.args:
        name, sep, value = arg.partition("=")
        if not sep:
            raise FlyError(f"could not parse secrets: '{arg}': must be in the format NAME=VALUE")
        values[name] = value
    for name, value in values.items():
        if value == "-":
            if not inv.stdin.piped():
                raise FlyError(f"secret `{name}` expects standard input but none provided")
            raw = inv.stdin.read(STDIN_LIMIT)
            values[name] = importfmt.go_trim_space(raw.decode("utf-8", "surrogateescape"))
    if not values:
        raise FlyError("requires at least one SECRET=VALUE pair")
    store(app, values)
    deploy_secrets(inv, app, stage=inv.flag("stage"), detach=inv.flag("detach"))


def run_import(inv: Invocation) -> Callable[[], int] | None:
    app = inv.app()
    # flyctl reads os.Stdin unconditionally; a terminal would block it. The simulator reads only piped input
    # (a terminal or /dev/null reads as empty: "requires at least one SECRET=VALUE pair").
    text = inv.stdin.read().decode("utf-8", "surrogateescape") if inv.stdin.piped() else ""
    try:
        values = importfmt.parse_import(text, inv.version())  # the parser of the release played
    except ValueError as exc:
        raise FlyError(f"Failed to parse secrets from stdin: {exc}") from None
    except importfmt.GoPanic as panic:
        # import.go has no recover: main.go's recovers it (release build), prints to stdout, exits 3. Nothing
        # was stored.
        inv.out.write(importfmt.recovered_panic_output(panic))
        return lambda: importfmt.PANIC_EXIT_CODE
    if not values:
        raise FlyError("requires at least one SECRET=VALUE pair")
    store(app, values)
    deploy_secrets(inv, app, stage=inv.flag("stage"), detach=inv.flag("detach"))
    return None


def run_unset(inv: Invocation) -> None:
    app = inv.app()
    for name in inv.args:
        app["secrets"].pop(name, None)  # an unknown name is not an error
    deploy_secrets(inv, app, stage=inv.flag("stage"), detach=inv.flag("detach"))


def run_deploy(inv: Invocation) -> None:
    """flyctl ``internal/command/secrets/deploy.go`` ``runDeploy``: needs a deployed app with machines."""
    app = inv.app()
    if not app["deployed"] or not rollout.active(app):
        raise FlyError(
            "no machines available to deploy",
            description="'fly secrets deploy' will only work if the app has been deployed and there are "
            "machines available",
            suggestion="Try 'fly deploy' first",
        )
    restart(inv, app, detach=inv.flag("detach"), reason="change_secrets", description="Deploy secrets")


def list_objects(app: dict[str, Any], version: tuple[int, ...]) -> list[dict[str, Any]]:
    """``fly secrets list --json`` in the shape of the simulated flyctl version's era."""
    out = []
    for name, secret in sorted(app["secrets"].items()):
        dig = digest(secret["value"], version)
        if version < MACHINES_API_SECRETS:
            out.append({"Name": name, "Digest": dig, "CreatedAt": secret["updated_at"]})
        elif version < SECRET_STATUS:
            out.append(
                {
                    "name": name,
                    "digest": dig,
                    "updated_at": secret["updated_at"],
                    "created_at": secret["created_at"],
                }
            )
        else:
            out.append({"name": name, "digest": dig, "status": secret["status"]})
    return out


def run_list(inv: Invocation) -> None:
    app = inv.app()
    version = inv.version()
    objects = list_objects(app, version)
    if inv.json_output():
        inv.print_json(objects)
        return
    if version < MACHINES_API_SECRETS:
        rows = [[o["Name"], o["Digest"], o["CreatedAt"]] for o in objects]
        inv.out.write(render.table(["Name", "Digest", "Created At"], rows))
    elif version < SECRET_STATUS:
        rows = [[o["name"], o["digest"], o["updated_at"]] for o in objects]
        inv.out.write(render.table(["Name", "Digest", "Updated At"], rows))
    else:
        rows = [[o["name"], o["digest"], o["status"]] for o in objects]
        inv.out.write(render.table(["Name", "Digest", "Status"], rows))


def command() -> Command:
    secrets = Command("secrets", "Manage application secrets with the set and unset commands.")
    secrets.add(
        Command(
            "list",
            "List application secret names, digests and creation times",
            aliases=("ls",),
            flags=(*APP_FLAGS, JSON),
            run=run_list,
        ),
        Command(
            "set",
            "Set one or more encrypted secrets for an application",
            usage="NAME=VALUE NAME=VALUE ...",
            flags=SHARED,
            args=at_least(1),
            run=run_set,
        ),
        Command("import", "Set secrets as NAME=VALUE pairs from stdin", flags=SHARED, run=run_import),
        Command(
            "unset",
            "Unset one or more encrypted secrets for an application",
            usage="NAME NAME ...",
            flags=SHARED,
            args=at_least(1),
            run=run_unset,
        ),
        Command(
            "deploy",
            "Deploy staged secrets for an application",
            flags=(*APP_FLAGS, DETACH, DNS_CHECKS),
            run=run_deploy,
        ),
    )
    return secrets
