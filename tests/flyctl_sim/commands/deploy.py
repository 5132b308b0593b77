"""``fly deploy [WORKDIR]``: flyctl ``internal/command/deploy/deploy.go`` (``run``, ``DeployWithConfig``,
``deployToMachines``), the image from ``deploy_build.go`` ``determineImage``, the rollout in ``rollout.py``.

Streams follow flyctl: ``render.NewTextBlock`` ("==> Verifying app config", "==> Building image",
"image: ...") writes to STDERR; the config report ("Validating ...", "✓ Configuration is valid"),
"Watch your deployment at", status lines, the release JSON line and "Visit your newly deployed app at"
go to STDOUT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flyctl_sim import appconfig, clock, ids, registry, rollout, session
from flyctl_sim.cobra import BOOL, FLOAT, INT, STRING_ARRAY, STRING_SLICE, Command, Flag, at_most
from flyctl_sim.commands.common import APP_FLAGS, DETACH, VM_SIZE_FLAGS
from flyctl_sim.errors import FlyError
from flyctl_sim.invocation import Invocation
from flyctl_sim.regions import REGIONS

EMIT_RELEASE_JSON_SINCE = (0, 4, 56)  # `git log -S FLY_EMIT_RELEASE_JSON`: #4930, first tagged in v0.4.56
DEFAULT_WAIT_TIMEOUT = "5m0s"
NO_IMAGE_SOURCE = (
    "failed to fetch an image or build from source: app does not have a Dockerfile or buildpacks configured. "
    "See https://fly.io/docs/reference/configuration/#the-build-section"
)
# imgsrc/nixpacks_builder.go ensureNixpacksBinary runs nixpacks' install.sh from master: the newest release
# when first installed, not pinned by flyctl. nixpacks prints the banner, not flyctl; no client reads it.
NIXPACKS_VERSION = "1.41.0"

# What a project's build steps print, forwarded on flyctl's STDOUT before the release line (control
# set_build_output replaces it). flyctl hands nixpacks and pack their stdout (imgsrc/nixpacks_builder.go
# cmd.Stdout = streams.Out; imgsrc/buildpacks_builder.go newPackLogger(streams.Out)); pack's lifecycle
# output carries the build steps' own lines. A Dockerfile build's progress goes to STDERR (imgsrc/buildkit.go
# progressui.NewDisplay(os.Stderr); dockerfile_builder.go DisplayJSONMessagesStream(..., streams.ErrOut)), so
# the simulator prints these lines there. For nixpacks the lines come from the docker build nixpacks runs
# with flyctl's streams (not flyctl's source): the simulator keeps them on stdout, the case in which a client
# must find the release line whatever precedes it. Braces on purpose: a bundler's JSON log line and a shell
# default.
DEFAULT_BUILD_STDOUT = (
    "#9 [stage-0  6/9] RUN npm run build\n"
    "#9 0.533 > web@1.0.0 build\n"
    '#9 6.102 {"level":"info","time":1754032800000,"msg":"compiled 1324 modules","warnings":{}}\n'
    "#9 6.140 serving on 0.0.0.0:${PORT:-8080}\n"
    "#9 DONE 6.3s\n"
)


def _duration(inv: Invocation, flag: str) -> float | None:
    """``deploy.go`` ``parseDurationFlag``: only when given; ``none``, a Go duration, or whole seconds."""
    if not inv.given(flag):
        return None
    text = inv.flag(flag)
    try:
        return clock.parse_timeout_flag(text)
    except ValueError:
        raise FlyError(
            f"invalid duration value {text} used for --{flag} flag: valid options are a number of seconds, "
            "number with time unit (i.e.: 5m, 180s) or 'none'"
        ) from None


def _load_config(inv: Invocation, workdir: Path) -> tuple[Path, appconfig.Config]:
    path = inv.config_file(workdir)
    if inv.given("config") or path.exists():
        return path, appconfig.load(path)
    # No fly.toml and no -c: flyctl falls back to the app's deployed config (needs -a / FLY_APP).
    return path, {}


def nixpacks_config_file(inv: Invocation, workdir: Path) -> str:
    """Which config file nixpacks reads. flyctl passes every ``NIXPACKS_*`` variable of its own environment
    to nixpacks as ``--env`` (internal/build/imgsrc/nixpacks_builder.go ``Run``); nixpacks takes
    ``NIXPACKS_CONFIG_FILE`` from those, relative to the app root, and bails when it is missing, else falls
    back to ``nixpacks.toml`` (railwayapp/nixpacks src/nixpacks/plan/generator.rs ``read_file_plan``)."""
    chosen = inv.env.get("NIXPACKS_CONFIG_FILE", "").replace("\n", "")
    if chosen:
        if not (workdir / chosen).is_file():
            # nixpacks exits non-zero; flyctl returns the command's error (nixpacks_builder.go: cmd.Run()).
            inv.warn(f"Error: Config file {chosen} does not exist")
            raise FlyError("failed to fetch an image or build from source: exit status 1")
        return chosen
    return "nixpacks.toml" if (workdir / "nixpacks.toml").is_file() else ""


def _nixpacks_plan(workdir: Path, config_file: str) -> str:
    """nixpacks' plan box (nixpacks ``src/nixpacks/plan/pretty_print.rs`` ``get_build_string``) for the phases
    of its config file; printed by nixpacks on its stdout, which flyctl forwards."""
    plan: dict[str, Any] = {}
    path = workdir / config_file if config_file else workdir / "nixpacks.toml"
    if path.is_file():
        try:
            plan = appconfig.load(path)
        except FlyError:
            plan = {}
    phases = plan.get("phases") if isinstance(plan.get("phases"), dict) else {}
    rows: list[tuple[str, str]] = []
    for name in ("setup", "install", "build"):
        phase = phases.get(name) if isinstance(phases.get(name), dict) else None
        if name == "setup" and phase is None:
            phase = {"nixPkgs": ["..."]}
        if not phase:
            continue
        pkgs = list(phase.get("nixPkgs") or []) + list(phase.get("aptPkgs") or [])
        cmds = list(phase.get("cmds") or [])
        label = bool(pkgs and cmds)
        content = []
        if pkgs:
            content.append(("pkgs: " if label else "") + ", ".join(pkgs))
        if cmds:
            content.append(("cmds: " if label else "") + "\n".join(cmds))
        rows.append((name.capitalize(), "\n".join(content)))
    start = plan.get("start") if isinstance(plan.get("start"), dict) else {}
    rows.append(("Start", str((start or {}).get("cmd", ""))))
    first = max(10, *(len(n) for n, _ in rows))
    widest = max(len(line) for _, c in rows for line in (c.split("\n") or [""]))
    width = min(80, max(20, 4 + first + 3 + widest))
    second = width - 4 - first - 3

    def row(title: str, content: str) -> list[str]:
        lines = []
        for part in content.split("\n") or [""]:
            while len(part) > second:
                lines.append(part[:second])
                part = part[second:]
            lines.append(part)
        out = [f"║ {title.ljust(first)} │ {lines[0].ljust(second)} ║"]
        out += [f"║ {''.ljust(first)} │ {line.ljust(second)} ║" for line in lines[1:]]
        return out

    title = f" Nixpacks v{NIXPACKS_VERSION} "
    pad = (width - len(title) - 2) / 2
    box = ["", "╔" + "═" * int(-(-pad // 1)) + title + "═" * int(pad // 1) + "╗"]
    sep = "║" + "─" * (width - 2) + "║"
    for index, (name, content) in enumerate(rows):
        if index:
            box.append(sep)
        box += row(name, content)
    box.append("╚" + "═" * (width - 2) + "╝")
    return "\n".join(box) + "\n"


def _build_stdout(inv: Invocation) -> str:
    configured = inv.state.get("build_output") or {}
    stdout = configured.get("stdout")
    return DEFAULT_BUILD_STDOUT if stdout is None else str(stdout)


def _build_stderr(inv: Invocation) -> str:
    configured = inv.state.get("build_output")
    return "" if configured is None else str(configured.get("stderr", ""))


def _emit(stream: Any, text: str) -> None:
    if text:
        stream.write(text if text.endswith("\n") else text + "\n")


def _resolve_image(
    inv: Invocation, app: dict[str, Any], cfg: appconfig.Config, workdir: Path
) -> tuple[str, str]:
    """(image ref, digest): ``deploy_build.go`` ``determineImage``."""
    build: dict[str, Any] = cfg["build"] if isinstance(cfg.get("build"), dict) else {}
    inv.warn("==> Building image")
    ref = inv.flag("image") or build.get("image", "")
    if ref:
        # imgsrc/remote_image_resolver.go: both lines on stderr; missing: resolver.go could not find image %q
        inv.warn(f"Searching for image '{ref}' remotely...")
        found = registry.find_image(inv.state, ref, session.docker_password(inv.token or ""))
        if found is None:
            raise FlyError(f'failed to fetch an image or build from source: could not find image "{ref}"')
        inv.warn(f"image found: img_{ids.node_id(16).lower()}")
        return ref, found["digest"]
    label = inv.flag("image-label") or f"deployment-{ids.ulid()}"
    tag = f"registry.fly.io/{app['name']}:{label}"
    if inv.flag("nixpacks"):
        # imgsrc/nixpacks_builder.go: `nixpacks build --name TAG WORKDIR`, its stdout on flyctl's stdout
        config_file = nixpacks_config_file(inv, workdir)
        inv.out.write(_nixpacks_plan(workdir, config_file))
        # What the image was built from, for tests: the config file and the plan's start command.
        inv.state.setdefault("image_builds", {})[tag] = {"builder": "nixpacks", "config": config_file}
        inv.warn('#0 building with "default" instance using docker driver')
        _emit(inv.out, _build_stdout(inv))
        _emit(inv.err, _build_stderr(inv))
        inv.print("\n=== Successfully Built! ===\n\nRun:\n  docker run -it " + tag)
        inv.warn("==> Pushing image to fly\n--> Pushing image done")
    else:
        dockerfile = build.get("dockerfile") or "Dockerfile"
        buildpacks = bool(build.get("builder") or build.get("buildpacks"))
        if not (buildpacks or (workdir / dockerfile).is_file()):
            raise FlyError(NO_IMAGE_SOURCE)
        if buildpacks:
            inv.warn("==> Building image with Buildpacks")
            inv.print("===> DETECTING\n[detector] 3 of 5 buildpacks participating\n===> BUILDING")
        else:
            inv.warn("==> Building image with Docker\n#1 [internal] load build definition from Dockerfile")
        # A Dockerfile build's steps are BuildKit progress: stderr (see DEFAULT_BUILD_STDOUT).
        _emit(inv.out if buildpacks else inv.err, _build_stdout(inv))
        _emit(inv.err, _build_stderr(inv))
        inv.warn("--> Building image done\n==> Pushing image to fly\n--> Pushing image done")
    inv.warn(f"image: {tag}\nimage size: 48 MB")
    inv.state.setdefault("known_images", []).append(tag)
    return tag, ids.image_digest(tag)


def _validate(inv: Invocation, path: Path, cfg: appconfig.Config, strategy: str) -> None:
    """``internal/appconfig/validation.go`` ``Validate``; the report goes to STDOUT (``deploy.go``
    ``determineAppConfig``: ``fmt.Fprint(io.Out, extraInfo)``)."""
    problems = appconfig.validate(cfg, strategy)
    inv.print(f"Validating {path}")
    if problems:
        for problem in problems:
            inv.print(f"\n   ✘{problem}")
        raise FlyError("App configuration is not valid")
    inv.print("✓ Configuration is valid")


def _flag_set(inv: Invocation, name: str) -> frozenset[str]:
    """``flag.GetNonEmptyStringSlice``."""
    return frozenset(v.strip() for v in inv.flag(name) if v.strip())


def run(inv: Invocation) -> None:
    workdir = (inv.cwd / inv.args[0]) if inv.args else inv.cwd
    path, cfg = _load_config(inv, workdir)
    app = inv.app(inv.app_name(cfg))
    if not cfg and app.get("config"):
        cfg = dict(app["config"])
    inv.warn("==> Verifying app config")
    extra_env = {}
    for pair in inv.flag("env"):
        name, sep, value = pair.partition("=")
        if not sep:
            raise FlyError(f"failed parsing environment: '{pair}': must be in the format NAME=VALUE")
        extra_env[name] = value
    if extra_env:
        cfg = {**cfg, "env": {**appconfig.env(cfg), **extra_env}}
    deploy_section: dict[str, Any] = cfg["deploy"] if isinstance(cfg.get("deploy"), dict) else {}
    strategy = inv.flag("strategy") or deploy_section.get("strategy") or "rolling"
    _validate(inv, path, cfg, strategy)
    inv.warn("--> Verified app config")
    image_ref, digest = _resolve_image(inv, app, cfg, workdir)
    if inv.flag("build-only"):
        return
    inv.print(f"\nWatch your deployment at https://fly.io/apps/{app['name']}/monitoring\n")
    # deploy.go deployToMachines: the duration flags, --max-unavailable and --deploy-retries are checked now
    for flag in ("release-command-timeout", "wait-timeout", "lease-timeout"):
        _duration(inv, flag)
    max_unavailable = None
    if inv.given("max-unavailable"):
        max_unavailable = float(inv.flag("max-unavailable"))
        if max_unavailable <= 0:
            raise FlyError("the value for --max-unavailable must be > 0")
    retries = inv.flag("deploy-retries")
    if retries != "auto" and not (retries.isdigit() or (retries.startswith("+") and retries[1:].isdigit())):
        raise FlyError("--deploy-retries must be set to a positive integer, 0, or 'auto'")
    region = inv.flag("primary-region") or cfg.get("primary_region") or rollout.DEFAULT_REGION
    if region not in REGIONS:
        # flyctl does not check primary_region (deploy.go passes it on; machines_launchinput.go sends it with
        # each new machine): the Machines API refuses it. Its text is not in flyctl's source and no public
        # source quotes it; the words are prompt.go Region's. The simulator refuses before any change.
        raise FlyError(f"region {region} not found")
    emit = inv.env.get("FLY_EMIT_RELEASE_JSON", "") != "" and inv.version() >= EMIT_RELEASE_JSON_SINCE
    args = rollout.DeployArgs(
        image_ref=image_ref,
        digest=digest,
        strategy=strategy,
        ha=inv.flag("ha"),
        skip_health=inv.flag("detach"),
        skip_smoke=inv.flag("detach") or not inv.flag("smoke-checks"),
        skip_release_command=inv.flag("skip-release-command"),
        update_only=inv.flag("update-only"),
        only_regions=_flag_set(inv, "regions"),
        exclude_regions=_flag_set(inv, "exclude-regions"),
        only_machines=_flag_set(inv, "only-machines"),
        exclude_machines=_flag_set(inv, "exclude-machines"),
        process_groups=_flag_set(inv, "process-groups"),
        max_unavailable=max_unavailable,
        volume_initial_size=inv.flag("volume-initial-size"),
        reason="deploy",
        description=f"Deploy image {image_ref}",
        consume_plan=True,
        emit_release_json=emit,
        user_email=inv.state["user"]["email"],
    )
    rollout.deploy(
        inv.state,
        app,
        cfg={**cfg, "primary_region": region},
        args=args,
        io=rollout.Output(inv.print, inv.warn),
        primary_region=region,
    )
    # deploy.go DeployWithConfig, after deployToMachines: the URL (appconfig Config.URL), if any
    url = appconfig.app_url(cfg, app["name"])
    if inv.flag("flycast"):
        inv.print(
            "\nYour your newly deployed app is available in the organizations' private network under "
            f"http://{app['name']}.flycast"
        )
    elif inv.flag("no-public-ips"):
        inv.print("\nYour app is deployed but does not have a public or private IP address")
    elif url:
        inv.print(f"\nVisit your newly deployed app at {url}\n")


def command() -> Command:
    """Flags of ``deploy.go`` ``New`` (``CommonFlags`` + app, config, update-only, ...), so that every real
    flag parses and any other fails like cobra."""
    return Command(
        "deploy",
        "Deploy Fly applications",
        usage="[WORKING_DIRECTORY]",
        flags=(
            *APP_FLAGS,
            Flag("image", shorthand="i", usage="The Docker image to deploy"),
            Flag("now", BOOL, usage="Deploy now without confirmation"),
            Flag("remote-only", BOOL, usage="Perform builds on a remote builder instance"),
            Flag("local-only", BOOL, usage="Only perform builds locally using the local docker daemon"),
            Flag("push", BOOL, usage="Push image to registry after build is complete"),
            Flag(
                "wg",
                BOOL,
                default=True,
                usage="Determines whether communication with remote builders are conducted over wireguard "
                "or plain internet(https)",
            ),
            Flag(
                "https-failover",
                BOOL,
                default=True,
                usage="Determines whether to failover to plain internet(https) communication with remote "
                "builders if wireguard fails",
                aliases=("http-failover",),
            ),
            DETACH,
            Flag(
                "strategy",
                usage="The strategy for replacing running instances. Options are canary, rolling, "
                "bluegreen, or immediate. The default strategy is rolling.",
            ),
            Flag(
                "dockerfile",
                usage="Path to a Dockerfile. Defaults to the Dockerfile in the working directory.",
            ),
            Flag(
                "ignorefile",
                usage="Path to a Docker ignore file. Defaults to the .dockerignore file in the working "
                "directory.",
            ),
            Flag(
                "image-label",
                usage="Image label to use when tagging and pushing to the fly registry. Defaults to "
                '"deployment-{timestamp}".',
            ),
            Flag(
                "build-arg",
                STRING_ARRAY,
                usage="Set of build time variables in the form of NAME=VALUE pairs. Can be specified "
                "multiple times.",
            ),
            Flag(
                "build-secret",
                STRING_ARRAY,
                usage="Set of build secrets of NAME=VALUE pairs. Can be specified multiple times.",
            ),
            Flag(
                "build-target",
                usage="Set the target build stage to build if the Dockerfile has more than one stage",
            ),
            Flag("build-context-warn-size", usage="Warn when the build context is larger than this size"),
            Flag("no-cache", BOOL, usage="Do not use the build cache when building the image"),
            Flag("depot", default="auto", usage="Deploy using depot to build the image"),
            Flag(
                "depot-scope",
                default="org",
                usage="The scope of the Depot builder's cache to use (org or app)",
            ),
            Flag("nixpacks", BOOL, usage="Deploy using nixpacks to build the image"),
            Flag("buildkit-addr", usage="Address of remote buildkit daemon"),
            Flag("buildkit-image", usage="Image to use for remote buildkit daemon"),
            Flag("buildkit", BOOL, usage="Deploy using buildkit-based remote builder"),
            Flag("build-only", BOOL, usage="Build but do not deploy"),
            Flag(
                "buildpacks-docker-host",
                usage="Address of docker daemon that will be exposed to the build container",
            ),
            Flag("buildpacks-volume", STRING_SLICE, usage="Mount host volume into the build container"),
            Flag("recreate-builder", BOOL, usage="Recreate the builder app, if it exists"),
            Flag("yes", BOOL, "y", usage="Accept all confirmations", aliases=("auto-confirm",)),
            *VM_SIZE_FLAGS,
            Flag(
                "env",
                STRING_ARRAY,
                "e",
                usage="Set of environment variables in the form of NAME=VALUE pairs. Can be specified "
                "multiple times.",
            ),
            Flag(
                "wait-timeout",
                default=DEFAULT_WAIT_TIMEOUT,
                usage="Time duration to wait for individual machines to transition states and become "
                "healthy.",
            ),
            Flag(
                "release-command-timeout",
                default=DEFAULT_WAIT_TIMEOUT,
                usage="Time duration to wait for a release command finish running, or 'none' to disable.",
            ),
            Flag(
                "lease-timeout",
                default="13s",
                usage="Time duration to lease individual machines while running deployment.",
            ),
            Flag("force-machines", BOOL, usage="Use the Apps v2 platform built with Machines"),
            Flag("ha", BOOL, default=True, usage="Create spare machines that increases app availability"),
            Flag("smoke-checks", BOOL, default=True, usage="Perform smoke checks during deployment"),
            Flag("dns-checks", BOOL, default=True, usage="Perform DNS checks during deployment"),
            Flag(
                "max-unavailable",
                FLOAT,
                default=0.33,
                usage="Max number of unavailable machines during rolling updates. A number between 0 and 1 "
                "means percent of total machines",
            ),
            Flag("no-public-ips", BOOL, usage="Do not allocate any new public IP addresses"),
            Flag("flycast", BOOL, usage="Allocate a private IPv6 addresses"),
            Flag(
                "file-local",
                STRING_ARRAY,
                usage="Set of files in the form of /path/inside/machine=<local/path> pairs.",
            ),
            Flag(
                "file-literal",
                STRING_ARRAY,
                usage="Set of literals in the form of /path/inside/machine=VALUE pairs.",
            ),
            Flag(
                "file-secret",
                STRING_ARRAY,
                usage="Set of secrets in the form of /path/inside/machine=SECRET pairs.",
            ),
            Flag("primary-region", usage="Override primary region in fly.toml configuration."),
            Flag(
                "regions",
                STRING_SLICE,
                usage="Deploy to machines only in these regions. Multiple regions can be specified with "
                "comma separated values or by providing the flag multiple times.",
                aliases=("only-regions",),
            ),
            Flag(
                "exclude-regions",
                STRING_SLICE,
                usage="Deploy to all machines except machines in these regions.",
            ),
            Flag("only-machines", STRING_SLICE, usage="Deploy to machines only with these IDs."),
            Flag(
                "exclude-machines",
                STRING_SLICE,
                usage="Deploy to all machines except machines with these IDs.",
            ),
            Flag("process-groups", STRING_SLICE, usage="Deploy to machines only in these process groups"),
            Flag("label", STRING_ARRAY, usage="Add custom metadata to an image via docker labels"),
            Flag(
                "max-concurrent",
                INT,
                default=8,
                usage="Maximum number of machines to operate on concurrently.",
            ),
            Flag(
                "immediate-max-concurrent",
                INT,
                default=8,
                usage="Maximum number of machines to update concurrently when using the immediate "
                "deployment strategy.",
            ),
            Flag(
                "volume-initial-size", INT, usage="The initial size in GB for volumes created on first deploy"
            ),
            Flag(
                "signal",
                shorthand="s",
                usage="Signal to stop the machine with for bluegreen strategy (default: SIGINT)",
            ),
            Flag("deploy-retries", default="auto", usage="Number of times to retry a deployment if it fails"),
            Flag("builder-pool", default="auto", usage="Experimental: Use pooled builder from Fly.io"),
            Flag("compression", default="gzip", usage="Compression algorithm to use for the image layers"),
            Flag("compression-level", INT, default=7, usage="Compression level to use for the image layers"),
            Flag("update-only", BOOL, usage="Do not create Machines for new process groups"),
            Flag("skip-release-command", BOOL, usage="Do not run the release command during deployment."),
            Flag(
                "export-manifest",
                usage="Specify a file to export the deployment configuration to a deploy manifest file, or "
                "'-' to print to stdout.",
            ),
            Flag("from-manifest", usage="Path to a deploy manifest file to use for deployment."),
        ),
        args=at_most(1),
        run=run,
    )
