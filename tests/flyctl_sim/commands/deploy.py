"""``fly deploy [WORKDIR]``: config checks, image source, release, machines, health."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flyctl_sim import appconfig, clock, ids, registry, render, rollout
from flyctl_sim.cobra import BOOL, FLOAT, STRING_ARRAY, STRING_SLICE, Command, Flag, at_most
from flyctl_sim.commands.common import APP_FLAGS, DETACH, YES
from flyctl_sim.errors import FlyError
from flyctl_sim.invocation import Invocation, version_tuple
from flyctl_sim.regions import REGIONS

EMIT_RELEASE_JSON_SINCE = (0, 4, 56)
DEFAULT_WAIT_TIMEOUT = "5m0s"
NO_IMAGE_SOURCE = (
    "failed to fetch an image or build from source: app does not have a Dockerfile or buildpacks configured. "
    "See https://fly.io/docs/reference/configuration/#the-build-section"
)


def _timeout(inv: Invocation, flag: str, cfg_value: Any) -> float | None:
    text = inv.flag(flag) if inv.given(flag) else str(cfg_value or inv.flag(flag))
    try:
        return clock.parse_timeout_flag(text)
    except ValueError as exc:
        # UNVERIFIED: flyctl returns the parse error as is.
        raise FlyError(str(exc)) from None


def _load_config(inv: Invocation, workdir: Path) -> tuple[Path, appconfig.Config]:
    path = inv.config_file(workdir)
    if inv.given("config") or path.exists():
        return path, appconfig.load(path)
    # No fly.toml and no -c: flyctl falls back to the app's deployed config (needs -a / FLY_APP).
    return path, {}


def _resolve_image(
    inv: Invocation, app: dict[str, Any], cfg: appconfig.Config, workdir: Path
) -> tuple[str, str]:
    """(image ref, digest) from ``--image``, ``--nixpacks``, ``[build] image`` or a Dockerfile build."""
    build: dict[str, Any] = cfg["build"] if isinstance(cfg.get("build"), dict) else {}
    ref = inv.flag("image") or build.get("image", "")
    if ref:
        found = registry.find_image(inv.state, ref)
        if found is None:
            raise FlyError(f'could not find image "{ref}"')
        inv.print(f"==> Building image\nSearching for image '{ref}' remotely...\nimage found: {ref}")
        return ref, found["digest"]
    label = inv.flag("image-label") or f"deployment-{ids.ulid()}"
    tag = f"registry.fly.io/{app['name']}:{label}"
    if inv.flag("nixpacks"):
        # The real flag downloads nixpacks and needs a docker daemon; the simulator "builds" instantly.
        inv.print(f"==> Building image with Nixpacks\n--> Building image done\nimage: {tag}")
    else:
        dockerfile = build.get("dockerfile") or "Dockerfile"
        if not (build.get("builder") or build.get("buildpacks") or (workdir / dockerfile).is_file()):
            raise FlyError(NO_IMAGE_SOURCE)
        inv.print(f"==> Building image\n--> Building image done\nimage: {tag}")
    inv.state.setdefault("known_images", []).append(tag)
    return tag, ids.image_digest(tag)


def run(inv: Invocation) -> None:
    workdir = (inv.cwd / inv.args[0]) if inv.args else inv.cwd
    path, cfg = _load_config(inv, workdir)
    app = inv.app(inv.app_name(cfg))
    if not cfg and app.get("config"):
        cfg = dict(app["config"])
    inv.print("==> Verifying app config")
    deploy_section: dict[str, Any] = cfg["deploy"] if isinstance(cfg.get("deploy"), dict) else {}
    strategy = inv.flag("strategy") or deploy_section.get("strategy") or "rolling"
    problems = appconfig.validate(cfg, strategy)
    if problems:
        details = ("Validating " + str(path), *(f"  ✘ {p}" for p in problems))
        raise FlyError("App configuration is not valid", details=details)
    for flag in ("release-command-timeout", "lease-timeout"):
        _timeout(inv, flag, None)
    _timeout(inv, "wait-timeout", deploy_section.get("wait_timeout"))
    extra_env = {}
    for pair in inv.flag("env"):
        name, sep, value = pair.partition("=")
        if not sep:
            raise FlyError(f"failed parsing environment: '{pair}': must be in the format NAME=VALUE")
        extra_env[name] = value
    if extra_env:
        cfg = {**cfg, "env": {**appconfig.env(cfg), **extra_env}}
    inv.print("--> Verified app config")
    region = inv.flag("primary-region") or cfg.get("primary_region") or rollout.DEFAULT_REGION
    if region not in REGIONS:
        raise FlyError(f"region {region} not found")
    image_ref, digest = _resolve_image(inv, app, cfg, workdir)
    if inv.flag("build-only"):
        return
    release_command = deploy_section.get("release_command")
    if release_command:
        inv.print(f"Running {app['name']} release_command: {release_command}")
        inv.print("  release_command succeeded")  # secrets, no volumes; the simulator just records it
    inv.print(f"\nWatch your deployment at https://fly.io/apps/{app['name']}/monitoring\n")
    outcome = rollout.roll_out(
        inv.state,
        app,
        cfg=cfg,
        image_ref=image_ref,
        image_digest=digest,
        strategy=strategy,
        reason="deploy",
        description=f"Deploy image {image_ref}",
        user_email=inv.state["user"]["email"],
        consume_plan=True,
        region=region,
    )
    for mid in outcome.created:
        inv.print(f"Created machine {mid} [{_group(outcome, mid)}]")
    if outcome.updated:
        inv.print(f"Updating existing machines in '{app['name']}' with {strategy} strategy")
    # Only --detach skips waiting for health checks. (Fly's docs describe `immediate` as not waiting either;
    # the reference does not, so the simulator keeps the conservative behaviour: unhealthy fails.)
    if not outcome.healthy and not inv.flag("detach"):
        mid = outcome.machines[0]["id"]
        raise rollout.health_timeout(mid)
    for machine in outcome.machines:
        inv.print(
            f" ✔ Machine {machine['id']} [{machine['config']['metadata']['fly_process_group']}] "
            f"update finished: success"
        )
    inv.print(f"Visit your newly deployed app at https://{app['name']}.fly.dev/")
    emit = inv.env.get("FLY_EMIT_RELEASE_JSON", "")
    if emit in ("1", "true") and version_tuple(str(inv.state.get("version"))) >= EMIT_RELEASE_JSON_SINCE:
        release = outcome.release
        inv.out.write(
            render.compact_json(
                {"id": release["id"], "version": release["version"], "image_ref": release["image_ref"]}
            )
        )


def _group(outcome: rollout.Outcome, mid: str) -> str:
    for machine in outcome.machines:
        if machine["id"] == mid:
            return str(machine["config"]["metadata"]["fly_process_group"])
    return "app"


def command() -> Command:
    return Command(
        "deploy",
        "Deploy Fly applications",
        usage="[WORKING_DIRECTORY]",
        flags=(
            *APP_FLAGS,
            Flag("image", shorthand="i", usage="The Docker image to deploy"),
            Flag("image-label", usage="Image label to use when tagging and pushing to the fly registry"),
            Flag(
                "strategy",
                usage="The strategy for replacing running instances (rolling, canary, bluegreen, immediate)",
            ),
            Flag(
                "wait-timeout",
                default=DEFAULT_WAIT_TIMEOUT,
                usage="Time duration to wait for individual machines to transition states and become healthy",
            ),
            Flag(
                "release-command-timeout",
                default=DEFAULT_WAIT_TIMEOUT,
                usage="Time duration to wait for a release command finish running",
            ),
            Flag("lease-timeout", default="13s", usage="Time duration to lease individual machines"),
            DETACH,
            Flag("build-only", BOOL, usage="Build but do not deploy"),
            Flag("push", BOOL, usage="Push image to registry after build is complete"),
            Flag("local-only", BOOL, usage="Only perform builds locally using the local docker daemon"),
            Flag("remote-only", BOOL, usage="Perform builds on a remote builder instance"),
            Flag("ha", BOOL, default=True, usage="Create spare machines that increases app availability"),
            Flag("now", BOOL, usage="Deploy now without confirmation"),
            YES,
            Flag(
                "env", STRING_ARRAY, "e", usage="Set of environment variables in the form of NAME=VALUE pairs"
            ),
            Flag("regions", STRING_SLICE, usage="Deploy to machines only in these regions"),
            Flag("process-groups", STRING_SLICE, usage="Deploy to machines only in these process groups"),
            Flag(
                "max-unavailable",
                FLOAT,
                default=0.33,
                usage="Max number of unavailable machines during rolling",
            ),
            Flag("primary-region", usage="Override primary region in fly.toml configuration"),
            Flag("no-public-ips", BOOL, usage="Do not allocate any new public IP addresses"),
            Flag("flycast", BOOL, usage="Allocate a private IPv6 addresses"),
            Flag("nixpacks", BOOL, usage="Deploy using nixpacks to build the image"),
        ),
        args=at_most(1),
        run=run,
    )
