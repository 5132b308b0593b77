"""Flags shared by many commands, declared once as flyctl's ``internal/flag`` package does."""

from __future__ import annotations

from flyctl_sim.cobra import BOOL, INT, Flag

APP = Flag("app", shorthand="a", usage="Application name")
CONFIG = Flag("config", shorthand="c", usage="Path to application configuration file")
JSON = Flag("json", BOOL, "j", usage="JSON output")
YES = Flag("yes", BOOL, "y", usage="Accept all confirmations")
DETACH = Flag("detach", BOOL, usage="Return immediately instead of monitoring deployment progress")
STAGE = Flag("stage", BOOL, usage="Set secrets but skip deployment for machine apps")
DNS_CHECKS = Flag("dns-checks", BOOL, default=True, usage="Perform DNS checks during deployment")

APP_FLAGS = (APP, CONFIG)
# internal/flag/machines.go VMSizeFlags: `fly deploy` and `fly scale count` take the same set.
VM_SIZE_FLAGS = (
    Flag("vm-size", usage='The VM size to set machines to. See "fly platform vm-sizes" for valid values'),
    Flag("vm-cpus", INT, usage="Number of CPUs (also --cpus)", aliases=("cpus",)),
    Flag(
        "vm-cpu-kind",
        usage="The kind of CPU to use ('shared' or 'performance') (also --vm-cpukind)",
        aliases=("vm-cpukind",),
    ),
    Flag(
        "vm-memory", usage="Memory (in megabytes) to attribute to the VM (also --memory)", aliases=("memory",)
    ),
    Flag("vm-max-memory", usage="Maximum memory (in megabytes) to allow for the VM"),
    Flag("vm-gpus", INT, usage="GPU machines are no longer supported"),
    Flag("vm-gpu-kind", usage="GPU machines are no longer supported", aliases=("vm-gpukind",)),
    Flag(
        "host-dedication-id", usage="The dedication id of the reserved hosts for your organization (if any)"
    ),
)

NOT_INTERACTIVE = "{} must be specified when not running interactively"
