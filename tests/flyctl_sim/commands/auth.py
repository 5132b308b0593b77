"""``fly auth whoami|token``, ``fly tokens create deploy`` and ``fly version``."""

from __future__ import annotations

import os

from flyctl_sim import ids, render, session
from flyctl_sim.cobra import BOOL, Command, Flag
from flyctl_sim.commands.common import APP_FLAGS, JSON
from flyctl_sim.invocation import Invocation

COMMIT = "5f1c1a0d4b6e3c2a9f8e7d6c5b4a39281706f5e4"
BUILD_DATE = "2026-08-01T12:00:00Z"
DEPRECATED_TOKEN_SINCE = (0, 2, 116)  # `git log -S` on auth/token.go: #3872, first tagged in v0.2.116


def run_whoami(inv: Invocation) -> None:
    email = inv.state["user"]["email"]
    if inv.json_output():
        inv.print_json({"email": email})
    else:
        inv.print(email)


def run_token(inv: Invocation) -> None:
    """auth/token.go ``runAuthToken``: ``--json`` prints ``{"token": ...}`` alone; otherwise the deprecation
    notice goes to stderr (unless ``--quiet``; added in v0.2.116, #3872) and the token to stdout."""
    token = session.token_in_use(inv)
    if inv.json_output():
        inv.print_json({"token": token})
        return
    if not inv.flag("quiet") and inv.version() >= DEPRECATED_TOKEN_SINCE:
        inv.warn("The 'fly auth token' command is deprecated. Use 'fly tokens create' instead.")
    inv.print(token)


def run_create_deploy(inv: Invocation) -> None:
    app = inv.app()
    token = ids.token()
    inv.state["auth"]["tokens"][token] = {"kind": "deploy", "app": app["name"]}
    inv.print(token)


def run_version(inv: Invocation) -> None:
    version = str(inv.state.get("version", "0.4.87"))
    uname = os.uname()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(uname.machine.lower(), "amd64")
    system = uname.sysname.lower() or "linux"
    if inv.json_output():
        inv.out.write(
            render.compact_json(
                {
                    "Name": "flyctl",
                    "Version": version,
                    "Commit": COMMIT,
                    "BranchName": "",
                    "BuildDate": BUILD_DATE,
                    "OS": system,
                    "Architecture": arch,
                    "Environment": "production",
                }
            )
        )
    else:
        inv.print(f"{inv.prog} v{version} {system}/{arch} Commit: {COMMIT} BuildDate: {BUILD_DATE}")


def auth_command() -> Command:
    auth = Command("auth", "Manage authentication")
    auth.add(
        Command(
            "whoami",
            "Displays the users email address/service identity currently authenticated and in use.",
            flags=(JSON,),
            run=run_whoami,
        ),
        Command(
            "token",
            "Show the current auth token in use by flyctl.",
            flags=(JSON, Flag("quiet", BOOL, "q", usage="Suppress deprecation warning")),
            run=run_token,
        ),
    )
    return auth


def tokens_command() -> Command:
    tokens = Command("tokens", "Manage Fly.io API tokens", aliases=("token",))
    create = Command("create", "Create Fly.io API tokens")
    create.add(Command("deploy", "Create deploy tokens", flags=APP_FLAGS, run=run_create_deploy))
    tokens.add(create)
    return tokens


def version_command() -> Command:
    return Command(
        "version",
        "Show version information for the flyctl command",
        flags=(JSON,),
        run=run_version,
        needs_auth=False,
    )
