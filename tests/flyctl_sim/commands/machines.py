"""``fly status``, ``fly machine list|destroy`` (aliases ``machines``, ``m``; ``ls``, ``remove``/``rm``) and
``fly checks list``."""

from __future__ import annotations

from typing import Any

from flyctl_sim import health, render, rollout, shapes
from flyctl_sim.cobra import BOOL, Command, Flag, at_least
from flyctl_sim.commands.common import APP_FLAGS, JSON
from flyctl_sim.errors import FlyError
from flyctl_sim.invocation import Invocation


def _live(app: dict[str, Any]) -> list[dict[str, Any]]:
    """fly-go ``flaps.ListActive``: every machine not destroyed/destroying, whatever its state."""
    return rollout.active(app)


def _checks_summary(machine: dict[str, Any]) -> str:
    checks = machine.get("checks", [])
    if not checks:
        return ""
    passing = sum(1 for c in checks if c["status"] == "passing")
    critical = sum(1 for c in checks if c["status"] == "critical")
    text = (
        f"{passing} total, {passing} passing" if not critical else f"{len(checks)} total, {critical} critical"
    )
    return text


def run_status(inv: Invocation) -> None:
    if inv.flag("watch") and inv.json_output():
        raise FlyError("--watch and --json are not supported together")
    app = inv.app(prefix="failed to get app: ")
    # status/machines.go RenderMachineStatus: sort.Slice(machines, ID descending), text and JSON alike.
    machines = sorted(_live(app), key=lambda m: m["id"], reverse=True)
    current = health.current_release(app)
    org = shapes.org(inv.state, app["org"])
    if inv.json_output():
        inv.print_json(
            {
                "AppURL": f"https://{app['name']}.fly.dev",
                "Deployed": app["deployed"],
                "Hostname": f"{app['name']}.fly.dev",
                "ID": app["name"],
                "Machines": [shapes.machine_object(m) for m in machines],
                "Name": app["name"],
                "Organization": shapes.org_object(org),
                "PlatformVersion": "machines",
                "Status": "deployed" if app["deployed"] else "pending",
                "Version": current["version"] if current else 0,
            }
        )
        return
    inv.print("App")
    inv.print(f"  Name     = {app['name']}")
    inv.print(f"  Owner    = {org['slug']}")
    inv.print(f"  Hostname = {app['name']}.fly.dev")
    inv.print(f"  Image    = {app['image'] or '-'}")
    inv.print("")
    if not machines:
        inv.print("No machines are available on this app.")
        return
    inv.print("Machines")
    rows = [
        [
            m["config"]["metadata"]["fly_process_group"],
            m["id"],
            m["config"]["metadata"]["fly_release_version"],
            m["region"],
            m["state"],
            _checks_summary(m),
            m["updated_at"],
        ]
        for m in machines
    ]
    inv.out.write(
        render.table(["Process", "ID", "Version", "Region", "State", "Checks", "Last Updated"], rows)
    )


def run_machine_list(inv: Invocation) -> None:
    app = inv.app()
    machines = _live(app)
    if inv.json_output():
        inv.print_json([shapes.machine_object(m) for m in machines])
        return
    if not machines:
        inv.print(f"No machines are available on this app {app['name']}")
        return
    rows = [
        [
            m["id"],
            m["name"],
            m["state"],
            _checks_summary(m),
            m["region"],
            m["config"]["metadata"]["fly_process_group"],
            m["config"]["image"],
            m["private_ip"],
            m["created_at"],
            m["updated_at"],
        ]
        for m in machines
    ]
    headers = [
        "ID",
        "Name",
        "State",
        "Checks",
        "Region",
        "Role",
        "Image",
        "IP Address",
        "Created",
        "Last Updated",
    ]
    inv.out.write(
        render.table(
            headers, rows, title=f"{len(machines)} machines have been retrieved from app {app['name']}."
        )
    )


def run_checks_list(inv: Invocation) -> None:
    """flyctl ``internal/command/checks/list.go`` ``runAppCheckList``: EVERY active machine (``ListActive``:
    stopped and suspended ones too, with the check results they last reported), sorted by id; JSON is an
    object keyed by machine id (Go sorts map keys), text rows sorted by check name within a machine."""
    app = inv.app()
    machines = sorted(_live(app), key=lambda m: m["id"])
    name_filter = inv.flag("check-name")
    if inv.json_output():
        inv.print_json({m["id"]: list(m.get("checks", [])) for m in machines})
        return
    inv.print(f"Health Checks for {app['name']}")
    rows = [
        [c["name"], c["status"], m["id"], c["updated_at"], c["output"]]
        for m in machines
        for c in sorted(m.get("checks", []), key=lambda c: c["name"])
        if not name_filter or c["name"] == name_filter
    ]
    inv.out.write(render.table(["Name", "Status", "Machine", "Last Updated", "Output"], rows))


def run_machine_destroy(inv: Invocation) -> None:
    """machine/destroy.go ``runMachineDestroy``: every ID is looked up first (select.go
    ``selectManyMachines``: a missing one fails before anything is destroyed), then each in turn
    (``Destroy``): stopped and suspended ones go, a started one (or any other state) only with ``--force``."""
    name = inv.parsed.values.get("app") or inv.env.get("FLY_APP", "")
    name = name or str(inv.local_config().get("app") or "")
    if not inv.args:  # select.go checkSelectConditions, before any API call
        if not name:
            raise FlyError("a machine ID or an app name is required")
        raise FlyError("a machine ID must be specified when not running interactively")
    if not name:
        # flyctl asks GraphQL for the first machine's app (buildContextFromAppNameOrMachineID); not
        # modelled (nixfly always passes --app): the simulator asks for the app name instead.
        app = inv.app()
    else:
        inv.check_scope(name)
        app = inv.state["apps"].get(name)
    if app is None:
        # selectManyMachines: flaps Get (fly-go flaps_machines.go "failed to get VM %s") fails first; "app
        # not found" is the Machines API's text, not in flyctl's source (quoted in superfly/flyctl#3954).
        mid = inv.args[0]
        raise FlyError(f"could not get machine {mid}: failed to get VM {mid}: app not found")
    found = []
    for mid in inv.args:
        machine = next((m for m in app["machines"] if m["id"] == mid), None)
        if machine is None:
            raise FlyError(
                f"machine {mid} was not found in app '{app['name']}'"
            )  # rewriteMachineNotFoundErrors
        found.append(machine)
    for machine in found:
        state, mid = machine["state"], machine["id"]
        if state == "destroyed":
            raise FlyError(f"machine {mid} has already been destroyed")
        if state == "started" and not inv.flag("force"):
            raise FlyError(f"machine {mid} currently started, either stop first or use --force flag")
        if state not in ("stopped", "suspended", "started") and not inv.flag("force"):
            raise FlyError(
                f"machine {mid} is in a {state} state and cannot be destroyed since it is not stopped or "
                "suspended, either stop first or use --force flag"
            )
        inv.print(f"machine {mid} was found and is currently in {state} state, attempting to destroy...")
        rollout.destroy_machine(inv.state, app, machine)
        inv.print(f"{mid} has been destroyed")


def status_command() -> Command:
    return Command(
        "status",
        "Show app status",
        flags=(
            *APP_FLAGS,
            JSON,
            Flag("all", BOOL, usage="Show completed instances"),
            Flag("watch", BOOL, usage="Refresh details"),
        ),
        run=run_status,
    )


def machine_command() -> Command:
    machine = Command("machine", "Manage Fly Machines.", aliases=("machines", "m"))
    machine.add(
        Command("list", "List Fly machines", aliases=("ls",), flags=(*APP_FLAGS, JSON), run=run_machine_list),
        Command(
            "destroy",
            "Destroy Fly machines",
            aliases=("remove", "rm"),
            flags=(
                *APP_FLAGS,
                Flag("select", BOOL, usage="Select from a list of machines"),
                Flag("force", BOOL, "f", usage="force kill machine regardless of current state"),
                Flag("image", shorthand="i", usage="remove all machines with the specified image hash"),
            ),
            args=at_least(0),  # destroy.go: cobra.ArbitraryArgs
            run=run_machine_destroy,
        ),
    )
    return machine


def checks_command() -> Command:
    checks = Command("checks", "Manage health checks")
    checks.add(
        Command(
            "list",
            "List health checks",
            aliases=("ls",),
            flags=(*APP_FLAGS, Flag("check-name", usage="Filter checks by name"), JSON),
            run=run_checks_list,
        )
    )
    return checks
