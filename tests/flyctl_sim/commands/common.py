"""Flags shared by many commands, declared once as flyctl's ``internal/flag`` package does."""

from __future__ import annotations

from flyctl_sim.cobra import BOOL, Flag

APP = Flag("app", shorthand="a", usage="Application name")
CONFIG = Flag("config", shorthand="c", usage="Path to application configuration file")
JSON = Flag("json", BOOL, "j", usage="JSON output")
YES = Flag("yes", BOOL, "y", usage="Accept all confirmations")
DETACH = Flag("detach", BOOL, usage="Return immediately instead of monitoring deployment progress")
STAGE = Flag("stage", BOOL, usage="Set secrets but skip deployment for machine apps")
DNS_CHECKS = Flag("dns-checks", BOOL, default=True, usage="Perform DNS checks during deployment")

APP_FLAGS = (APP, CONFIG)

NOT_INTERACTIVE = "{} must be specified when not running interactively"
