"""``fly apps create|list|destroy``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flyctl_sim import ids, render, shapes, state
from flyctl_sim.cobra import BOOL, Args, Command, Flag, at_most
from flyctl_sim.commands.common import JSON, NOT_INTERACTIVE, YES
from flyctl_sim.errors import FlyError
from flyctl_sim.invocation import Invocation

# App names are checked by the API, not by flyctl (apps/create.go ``RunCreate`` sends the name as given;
# flaps ``CreateApp`` since v0.4.42). flyctl's own rule for names it makes (launch/plan_builder.go
# ``validateAppName``: "app name must consist of only lowercase letters, numbers, and dashes") is the
# charset the API enforces.
# The texts below are the API's, not in flyctl's source. A bad charset or a name over 63 characters (one
# DNS label; superfly/flyctl#4283 shows longer names were accepted until 2025-03) gets one message, quoted
# from the platform in superfly/flyctl#4292 (v0.3.99); "Name has already been taken" in superfly/flyctl#1102.
NAME_RE = re.compile(r"[a-z0-9-]+")
MAX_NAME = 63
INVALID_NAME = "Validation failed: Name under 63 chars using numbers, lowercase letters and dashes"


def _pick_org(inv: Invocation) -> dict[str, Any]:
    slug = inv.flag("org") or inv.env.get("FLY_ORG", "") or inv.env.get("FLY_ORGANIZATION", "")
    if slug:
        return shapes.org(inv.state, slug)
    orgs: list[dict[str, Any]] = inv.state["orgs"]
    if len(orgs) == 1 and orgs[0]["type"] == "PERSONAL":
        inv.warn(f"automatically selected personal organization: {orgs[0]['name']}")
        return orgs[0]
    raise FlyError(NOT_INTERACTIVE.format("org slug"))


def _save_app_name(inv: Invocation, name: str) -> None:
    """``--save``: write the app name into ./fly.toml (creating it when absent)."""
    path = Path(inv.cwd) / "fly.toml"
    line = f"app = '{name}'"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        new, count = re.subn(r"(?m)^app\s*=.*$", line, text, count=1)
        text = new if count else f"{line}\n{text}"
    else:
        text = line + "\n"
    path.write_text(text, encoding="utf-8")
    inv.print(f"Wrote config file {path.name}")


def run_create(inv: Invocation) -> None:
    inv.check_scope(None)
    positional = inv.args[0] if inv.args else ""
    flagged = inv.flag("name")
    if positional and flagged and positional != flagged:
        # apps/create.go RunCreate (v0.4.87 and HEAD).
        raise FlyError(f"two app names specified {positional} and {flagged}, only one may be specified")
    name = positional or flagged
    if not name and inv.flag("generate-name"):
        name = ids.friendly_name()
    if not name:
        raise FlyError(NOT_INTERACTIVE.format("name argument or flag"))
    org = _pick_org(inv)
    request = f" (Request ID: {ids.request_id()})"
    if not NAME_RE.fullmatch(name) or len(name) > MAX_NAME:
        raise FlyError(INVALID_NAME + request)
    if name in inv.state["apps"] or name in inv.state.get("taken_names", []):
        raise FlyError("Validation failed: Name has already been taken" + request)
    app = state.new_app(name, org["slug"], inv.flag("network") or "default")
    inv.state["apps"][name] = app
    if inv.flag("save"):
        _save_app_name(inv, name)
    if inv.json_output():
        inv.print_json(shapes.app_object(inv.state, app))
    else:
        inv.print(f"New app created: {name}")


def run_list(inv: Invocation) -> None:
    # App-scoped deploy tokens cannot list apps: Invocation.check_scope says where that comes from.
    inv.check_scope(None)
    slug = inv.flag("org")
    org_filter = shapes.org(inv.state, slug)["slug"] if slug else ""
    apps = [a for a in inv.state["apps"].values() if not org_filter or a["org"] == org_filter]
    if inv.json_output():
        inv.print_json([shapes.app_object(inv.state, a) for a in apps])
        return
    if inv.flag("quiet"):
        for app in apps:
            inv.print(app["name"])
        return
    if not apps:
        inv.print("No apps found")
        return
    rows = []
    for app in apps:
        releases = app["releases"]
        latest = releases[-1]["created_at"] if releases else ""
        rows.append([app["name"], app["org"], "deployed" if app["deployed"] else "pending", latest])
    inv.out.write(render.table(["Name", "Owner", "Status", "Latest Deploy"], rows))


def run_destroy(inv: Invocation) -> None:
    """apps/destroy.go ``RunDestroy``: cobra.ArbitraryArgs, so no name is the command's own error; then app by
    app, in order: the --yes check (no terminal), ``GetApp`` (an unknown app is the API's ``Could not find
    App``, after the apps before it were destroyed), ``DeleteApp`` (its machines and volumes go with it, as
    they are the app's records here), ``Destroyed app <name>`` on stdout."""
    if not inv.args:
        raise FlyError("no app names provided")
    for name in inv.args:
        if not inv.flag("yes"):
            raise FlyError(NOT_INTERACTIVE.format("yes flag"))
        inv.app(name)
        del inv.state["apps"][name]
        inv.state.get("logs", {}).pop(name, None)
        inv.state.get("health_plans", {}).pop(name, None)
        inv.print(f"Destroyed app {name}")


def command() -> Command:
    apps = Command("apps", "Manage apps.", aliases=("app",))
    apps.add(
        Command(
            "create",
            "Create a new application.",
            usage="[APPNAME]",
            flags=(
                Flag("name", usage="The app name to use"),
                Flag("generate-name", BOOL, usage="Generate an app name"),
                Flag("org", shorthand="o", usage="The target Fly.io organization"),
                Flag("network", usage="Specify custom network id"),
                Flag("save", BOOL, usage="Save the app name to the config file"),
                YES,
                JSON,
            ),
            args=at_most(1),
            run=run_create,
        ),
        Command(
            "list",
            "List applications.",
            aliases=("ls",),
            flags=(
                JSON,
                Flag("org", shorthand="o", usage="Show only apps in this organization"),
                Flag("quiet", BOOL, "q", usage="Only list app names"),
            ),
            run=run_list,
        ),
        Command(
            "destroy",
            "Permanently destroy one or more apps.",
            usage="<APPNAME> [<APPNAME>...]",
            aliases=("delete", "rm", "remove"),
            flags=(YES,),
            args=Args(0, None),
            run=run_destroy,
        ),
    )
    return apps
