"""The argv of every flyctl command nixfly runs, built from plain values (Kamal's ``commands/`` layer).

Nothing here runs anything, reads the environment or knows where flyctl is: ``nixfly.flyctl`` runs these and
reads what they print, and tests/unit/test_flyctlargv.py compares each one as a string. Each builder names
the command's source in github.com/superfly/flyctl and the first release with every flag it passes; the
newest of them is ``logs --no-tail`` (v0.1.146, January 2024), older than any flyctl nixfly is used with
(nixos-25.05 packages v0.3.172), so no argv depends on the flyctl version. What does is read elsewhere: the
release line (``deploy_env``) and the secrets parser (nixfly.flysecrets).

Secret values never appear here: argv is readable by every local user through /proc, so ``secrets import``
takes its values on stdin.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# internal/flag/flag.go JSONOutput (flagnames.JSONOutput): per command, not global.
JSON = "--json"


def command(argv: Sequence[str]) -> str:
    """The command's words, before its first flag: ``volumes list`` of ``volumes list --app a --json``."""
    words = []
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
    return " ".join(words)


# --- reads: each prints JSON with --json --------------------------------------------------------------------


def version() -> list[str]:
    """internal/command/version/version.go: ``--json`` since v0.0.326."""
    return ["version", JSON]


def whoami() -> list[str]:
    """internal/command/auth/whoami.go: ``--json`` since v0.0.326."""
    return ["auth", "whoami", JSON]


def status(app: str) -> list[str]:
    """internal/command/status/status.go: ``--app``, ``--json`` since v0.0.326."""
    return ["status", "--app", app, JSON]


def volumes_list(app: str) -> list[str]:
    """internal/command/volumes/list.go: ``--app``, ``--json`` since v0.0.326."""
    return ["volumes", "list", "--app", app, JSON]


def secrets_list(app: str) -> list[str]:
    """internal/command/secrets/list.go: ``--json`` since v0.0.370."""
    return ["secrets", "list", "--app", app, JSON]


def releases(app: str) -> list[str]:
    """internal/command/apps/releases.go (``flyctl releases``): ``--json`` since v0.0.326."""
    return ["releases", "--app", app, JSON]


def apps_list() -> list[str]:
    """internal/command/apps/list.go: ``--json`` since v0.0.326."""
    return ["apps", "list", JSON]


def platform_regions() -> list[str]:
    """internal/command/platform/regions.go: ``--json`` since v0.0.326."""
    return ["platform", "regions", JSON]


def checks_list(app: str) -> list[str]:
    """internal/command/checks/list.go: ``--json`` since v0.0.394."""
    return ["checks", "list", "--app", app, JSON]


# --- reads of text ------------------------------------------------------------------------------------------


def logs(app: str) -> list[str]:
    """internal/command/logs/logs.go: ``--no-tail`` since v0.1.146 (it may keep polling: the caller bounds
    it with a timeout)."""
    return ["logs", "--app", app, "--no-tail"]


def auth_token() -> list[str]:
    """internal/command/auth/token.go (hidden, deprecated, present since v0.0.326): prints the session's
    token; it goes to stdout, never to argv."""
    return ["auth", "token"]


# --- changes ------------------------------------------------------------------------------------------------


def apps_create(app: str, org: str = "") -> list[str]:
    """internal/command/apps/create.go ``RunCreate``: positional name, ``--org`` since v0.0.326 (without it
    flyctl picks a lone personal org, else refuses without a terminal)."""
    return ["apps", "create", app, *(["--org", org] if org else [])]


def apps_destroy(app: str) -> list[str]:
    """internal/command/apps/destroy.go ``RunDestroy``: without a terminal only with ``--yes`` (v0.0.326)."""
    return ["apps", "destroy", app, "--yes"]


def volumes_create(app: str, name: str, region: str, size_gb: int) -> list[str]:
    """internal/command/volumes/create.go ``runCreate``: ``--region``, ``--size`` since v0.0.326, ``--yes``
    since v0.0.500 (the confirmation is a prompt, an error without a terminal)."""
    return ["volumes", "create", name, "--app", app, "--region", region, "--size", str(size_gb), "--yes"]


def volumes_destroy(app: str, volume_id: str) -> list[str]:
    """internal/command/volumes/destroy.go ``runDestroy``: ``--yes`` since v0.0.447."""
    return ["volumes", "destroy", volume_id, "--app", app, "--yes"]


def machine_destroy(app: str, machine_ids: Sequence[str]) -> list[str]:
    """internal/command/machine/destroy.go: ``--force`` (since v0.0.447), as a started machine is refused
    without it."""
    return ["machine", "destroy", *machine_ids, "--app", app, "--force"]


def scale_count(app: str, *, group: str, region: str, count: int, new_volumes: bool = False) -> list[str]:
    """internal/command/scale/count.go ``newScaleCount``: ``--process-group`` (flag.ProcessGroup, its
    canonical name since v0.1.129), ``--region``, ``--max-per-region`` (v0.0.231), ``--yes`` (v0.0.511),
    ``--with-new-volumes`` (v0.1.59). ``--max-per-region`` equal to the count keeps flyctl from ever
    placing more in that region."""
    argv = ["scale", "count", str(count), "--app", app, "--process-group", group, "--region", region]
    argv += ["--max-per-region", str(count), "--yes"]
    return [*argv, "--with-new-volumes"] if new_volumes else argv


def secrets_import(app: str, *, stage: bool) -> list[str]:
    """internal/command/secrets/import.go ``runImport``: NAME=VALUE lines on stdin; ``--stage``
    (secrets.go sharedFlags, since v0.0.364) sets them without restarting machines."""
    return ["secrets", "import", "--app", app, *(["--stage"] if stage else [])]


def deploy(app: str, config: Path, *, image: str = "", strategy: str = "", ha: bool = True) -> list[str]:
    """internal/command/deploy/deploy.go ``New``: ``--config``, ``--image`` (v0.0.326), ``--yes`` (v0.1.85),
    ``--nixpacks`` (v0.0.362) when there is no image, ``--strategy`` (v0.0.326), ``--ha`` (v0.0.545).

    ``--ha=false``: machines_deploymachinesapp.go ``deployCreateMachinesForGroups`` gives a group without
    machines a second one when it has services and no mount (else a standby); with it, one machine.
    """
    argv = ["deploy", "--app", app, "--config", str(config), "--yes"]
    argv += ["--image", image] if image else ["--nixpacks"]
    if strategy:
        argv += ["--strategy", strategy]
    return argv if ha else [*argv, "--ha=false"]


def deploy_env(*, image: str = "", nixpacks_config: str = "") -> dict[str, str]:
    """The environment ``deploy`` needs beside its argv.

    ``FLY_EMIT_RELEASE_JSON`` (any non-empty value; machines_deploymachinesapp.go ``DeployMachinesApp``,
    v0.4.56+) makes flyctl print the release it made; older ones ignore it. nixpacks reads
    ``NIXPACKS_CONFIG_FILE`` (relative to the app root) from its ``--env`` arguments, and flyctl passes every
    ``NIXPACKS_*`` variable of its own environment as one (internal/build/imgsrc/nixpacks_builder.go
    ``Run``; nixpacks src/nixpacks/plan/generator.rs ``read_file_plan``): that is how each mode gets its own
    nixpacks config.
    """
    env = {"FLY_EMIT_RELEASE_JSON": "1"}
    if not image and nixpacks_config:
        env["NIXPACKS_CONFIG_FILE"] = nixpacks_config
    return env
