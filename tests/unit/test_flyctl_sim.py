"""The flyctl simulator driven as a subprocess, the way nixfly's tests drive it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flyctl_sim import control

APP = "sim-app"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return control.init(tmp_path / "flyhome")


def fly(home: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return control.run(home, *args, **kwargs)


def ok(home: Path, *args: str, **kwargs: Any) -> str:
    proc = fly(home, *args, **kwargs)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def fails(home: Path, *args: str, code: int = 1, **kwargs: Any) -> str:
    proc = fly(home, *args, **kwargs)
    assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc.stderr


def write_toml(directory: Path, body: str, app: str = APP) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fly.toml"
    path.write_text(f'app = "{app}"\nprimary_region = "ord"\n{body}', encoding="utf-8")
    return path


IMAGE = "registry.fly.io/sim-app:v1"
HTTP_CHECKS = """
[http_service]
internal_port = 8080

[[http_service.checks]]
grace_period = "5s"
interval = "10s"
timeout = "2s"
method = "GET"
path = "/health"
"""


@pytest.fixture
def deployed(home: Path, tmp_path: Path) -> Path:
    """An app deployed once (healthy) from a fly.toml in tmp_path/app; returns that directory."""
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n[env]\nMODE = "prod"\n{HTTP_CHECKS}')
    ok(home, "deploy", cwd=workdir)
    return workdir


# --- executables, environment -------------------------------------------------------------------------------


def test_bin_scripts_run_from_path(home: Path, tmp_path: Path) -> None:
    env = control.env(home)
    for name in ("flyctl", "fly"):
        exe = shutil.which(name, path=env["PATH"])
        assert exe == str(control.BIN_DIR / name) and os.access(exe, os.X_OK)
    proc = subprocess.run(
        ["fly", "version"], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith("fly v0.4.87 ")


def test_missing_home_is_an_error(tmp_path: Path) -> None:
    env = {k: v for k, v in control.env(tmp_path).items() if k != "FLYCTL_SIM_HOME"}
    proc = subprocess.run(
        [sys.executable, str(control.FLYCTL), "version"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert proc.stderr == "flyctl simulator: FLYCTL_SIM_HOME is not set\n"


def test_version_text_and_compact_json(home: Path) -> None:
    assert re.fullmatch(
        r"flyctl v0\.4\.87 \w+/\w+ Commit: [0-9a-f]{40} BuildDate: \S+Z\n", ok(home, "version")
    )
    line = ok(home, "version", "-j")
    assert line.count("\n") == 1 and ": " not in line
    assert set(json.loads(line)) == {
        "Name",
        "Version",
        "Commit",
        "BranchName",
        "BuildDate",
        "OS",
        "Architecture",
        "Environment",
    }
    control.set_version(home, "v0.3.100")
    assert json.loads(ok(home, "version", "--json"))["Version"] == "0.3.100"


# --- strict, cobra-like parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["apps", "list", "--foo"], "Error: unknown flag: --foo\n"),
        (["apps", "list", "--foo=1"], "Error: unknown flag: --foo\n"),
        (["apps", "list", "-z"], "Error: unknown shorthand flag: 'z' in -z\n"),
        (["apps", "list", "-jz"], "Error: unknown shorthand flag: 'z' in -jz\n"),
        (["status", "--app"], "Error: flag needs an argument: --app\n"),
        (["status", "-a"], "Error: flag needs an argument: 'a' in -a\n"),
        (["apps", "frobnicate"], 'Error: unknown command "frobnicate" for "flyctl apps"\n'),
        (["frobnicate"], 'Error: unknown command "frobnicate" for "flyctl"\n'),
        (["volumes", "create", "-a", APP, "-y", "-r", "ord"], "Error: accepts 1 arg(s), received 0\n"),
        (["volumes", "create", "a", "b"], "Error: accepts 1 arg(s), received 2\n"),
        (["apps", "create", "a", "b"], "Error: accepts at most 1 arg(s), received 2\n"),
        (["secrets", "set"], "Error: requires at least 1 arg(s), only received 0\n"),
        (["apps", "list", "extra"], 'Error: unknown command "extra" for "flyctl apps list"\n'),
        (["deploy", "--json"], "Error: unknown flag: --json\n"),
        (["secrets", "import", "-j"], "Error: unknown shorthand flag: 'j' in -j\n"),
        (["apps", "destroy", "-a", "x"], "Error: unknown shorthand flag: 'a' in -a\n"),
        (
            ["deploy", "--detach=maybe"],
            'Error: invalid argument "maybe" for "--detach" flag: '
            'strconv.ParseBool: parsing "maybe": invalid syntax\n',
        ),
        (
            ["volumes", "create", "v", "-s", "big"],
            'Error: invalid argument "big" for "-s, --size" flag: '
            'strconv.ParseInt: parsing "big": invalid syntax\n',
        ),
        (["apps", "list", "---x"], "Error: bad flag syntax: ---x\n"),
    ],
)
def test_parse_errors_match_cobra(home: Path, args: list[str], message: str) -> None:
    assert fails(home, *args) == message


def test_parse_errors_come_before_auth(tmp_path: Path) -> None:
    home = control.init(tmp_path / "h", logged_in=False)
    assert fails(home, "apps", "list", "--nope") == "Error: unknown flag: --nope\n"


def test_unknown_command_suggests(home: Path) -> None:
    assert "Did you mean this?\n\tlist\n" in fails(home, "apps", "lst")


def test_flag_syntax_variants(home: Path) -> None:
    control.create_app(home, APP)
    for args in (["-a", APP], [f"-a{APP}"], [f"-a={APP}"], ["--app", APP], [f"--app={APP}"]):
        assert json.loads(ok(home, "status", *args, "-j"))["Name"] == APP
    # flags after positionals, combined bool shorthands, aliases
    assert "New app created: other" in ok(home, "app", "create", "other", "-y")
    assert len(json.loads(ok(home, "apps", "ls", "-jq"))) == 2
    # a non-bool flag takes the next word even if it looks like a flag (pflag)
    assert 'Could not find App "-j"' in fails(home, "status", "-a", "-j")
    # `--` ends flag parsing: what follows is positional
    err = fails(home, "apps", "create", "--", "--Weird")
    assert "Error: Validation failed: Name may only contain numbers, lowercase letters and dashes" in err


def test_help_exits_zero(home: Path) -> None:
    assert "Usage:" in ok(home, "deploy", "--help")
    assert "Available Commands:" in ok(home, "apps")
    assert "Available Commands:" in ok(home)
    assert "--image" in ok(home, "help", "deploy")


# --- auth ---------------------------------------------------------------------------------------------------


def test_no_token_and_bad_token(tmp_path: Path) -> None:
    home = control.init(tmp_path / "h", logged_in=False)
    assert fails(home, "apps", "list") == (
        "Error: no access token available. Please login with 'flyctl auth login'\n"
    )
    bad = "Error: failed retrieving current user: You must be authenticated to view this.\n"
    assert fails(home, "apps", "list", env_extra={"FLY_API_TOKEN": "nope"}) == bad
    assert fails(home, "auth", "whoami", "-t", "nope") == bad
    assert ok(home, "version")  # no auth needed
    good = control.DEFAULT_TOKEN
    assert ok(home, "auth", "whoami", env_extra={"FLY_API_TOKEN": good}) == "developer@example.com\n"
    # FLY_ACCESS_TOKEN wins over FLY_API_TOKEN
    assert fails(home, "auth", "whoami", env_extra={"FLY_ACCESS_TOKEN": "nope", "FLY_API_TOKEN": good}) == bad
    assert ok(home, "auth", "whoami", env_extra={"FLY_ACCESS_TOKEN": good, "FLY_API_TOKEN": "nope"})
    control.login(home)
    assert json.loads(ok(home, "auth", "whoami", "-j")) == {"email": "developer@example.com"}
    assert ok(home, "auth", "token").strip() == good


def test_deploy_tokens_are_app_scoped(home: Path) -> None:
    control.create_app(home, APP)
    control.create_app(home, "other")
    token = ok(home, "tokens", "create", "deploy", "-a", APP).strip()
    assert token.startswith("FlyV1 ")
    env = {"FLY_API_TOKEN": token}
    assert json.loads(ok(home, "status", "-a", APP, "--json", env_extra=env))["Name"] == APP
    assert fails(home, "apps", "list", env_extra=env) == "Error: unauthorized\n"
    assert fails(home, "status", "-a", "other", env_extra=env) == "Error: unauthorized\n"


# --- apps ---------------------------------------------------------------------------------------------------


def test_apps_create_twice_is_taken(home: Path) -> None:
    proc = fly(home, "apps", "create", APP)
    assert proc.returncode == 0 and proc.stdout == f"New app created: {APP}\n"
    assert "automatically selected personal organization: Sim Developer" in proc.stderr
    err = fails(home, "apps", "create", APP)
    taken = r"(?m)^Error: Validation failed: Name has already been taken \(Request ID: \S+\)\n\Z"
    assert re.search(taken, err)
    control.add_taken_name(home, "someone-elses")
    assert "already been taken" in fails(home, "apps", "create", "--name", "someone-elses")
    assert "lowercase letters and dashes" in fails(home, "apps", "create", "Bad_Name")
    assert "two app names specified a-1 and b-2" in fails(home, "apps", "create", "a-1", "--name", "b-2")
    assert "name argument or flag must be specified when not running interactively" in fails(
        home, "apps", "create"
    )
    created = json.loads(ok(home, "apps", "create", "--generate-name", "--json"))
    assert created["Name"] == created["ID"] and created["Organization"]["Slug"] == "personal"


def test_apps_list_shapes_and_orgs(home: Path) -> None:
    assert json.loads(ok(home, "apps", "list", "-j")) == []
    assert ok(home, "apps", "list") == "No apps found\n"
    control.add_org(home, "acme", "Acme Inc")
    assert "org slug must be specified" in fails(home, "apps", "create", APP)
    assert "organization nowhere not found" in fails(home, "apps", "create", APP, "-o", "nowhere")
    ok(home, "apps", "create", APP, "--org", "acme")
    ok(home, "apps", "create", "mine", env_extra={"FLY_ORG": "personal"})
    listed = json.loads(ok(home, "apps", "list", "--json"))
    required = {
        "ID",
        "Name",
        "State",
        "Status",
        "Deployed",
        "Hostname",
        "AppURL",
        "Version",
        "NetworkID",
        "Network",
        "Organization",
        "CurrentRelease",
        "PlatformVersion",
    }
    assert all(required <= set(a) for a in listed)
    assert [a["Name"] for a in json.loads(ok(home, "apps", "list", "-j", "-o", "acme"))] == [APP]
    assert "yes flag must be specified" in fails(home, "apps", "destroy", APP)
    assert ok(home, "apps", "rm", APP, "-y") == f"Destroyed app {APP}\n"
    assert control.apps(home) == ["mine"]


def test_app_name_resolution(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    assert "missing an app name" in fails(home, "status", cwd=tmp_path)
    assert json.loads(ok(home, "status", "-j", cwd=tmp_path, env_extra={"FLY_APP": APP}))["Name"] == APP
    write_toml(tmp_path / "cfgdir", "")
    assert json.loads(ok(home, "status", "-j", "-c", "cfgdir", cwd=tmp_path))["Name"] == APP
    assert json.loads(ok(home, "status", "-j", cwd=tmp_path / "cfgdir"))["Name"] == APP
    # -a beats FLY_APP beats fly.toml
    err = fails(home, "status", "-a", "nope", cwd=tmp_path / "cfgdir", env_extra={"FLY_APP": APP})
    assert err == 'Error: failed to get app: Could not find App "nope"\n'


# --- volumes ------------------------------------------------------------------------------------------------


def test_volumes_create_never_deduplicates(home: Path) -> None:
    control.create_app(home, APP)
    assert "yes flag must be specified" in fails(home, "volumes", "create", "data", "-a", APP, "-r", "ord")
    assert "region code must be specified" in fails(home, "volumes", "create", "data", "-a", APP, "-y")
    assert "region xyz not found" in fails(home, "vol", "create", "data", "-a", APP, "-y", "-r", "xyz")
    assert "between 1 and 500" in fails(
        home, "volumes", "create", "data", "-a", APP, "-y", "-r", "ord", "-s", "501"
    )
    first = json.loads(ok(home, "volumes", "create", "data", "-a", APP, "-y", "-r", "ord", "-j"))
    assert first["size_gb"] == 1 and first["id"].startswith("vol_") and first["attached_machine_id"] is None
    # a same-named volume exists: no confirmation needed, and ANOTHER volume is created
    ok(home, "volume", "create", "data", "-a", APP, "-s", "3", env_extra={"FLY_REGION": "ord"})
    listed = json.loads(ok(home, "volumes", "ls", "-a", APP, "--json"))
    assert [v["name"] for v in listed] == ["data", "data"] and listed[0]["id"] != listed[1]["id"]
    assert set(listed[0]) == {
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
    }
    two = ok(home, "volumes", "create", "logs", "-a", APP, "-y", "-r", "ord", "-n", "2", "--json")
    decoder, pos, objects = json.JSONDecoder(), 0, []
    while pos < len(two.strip()):
        obj, pos = decoder.raw_decode(two, pos)
        objects.append(obj)
        while pos < len(two) and two[pos].isspace():
            pos += 1
    assert len(objects) == 2 and len(control.volumes(home, APP)) == 4


# --- secrets ------------------------------------------------------------------------------------------------

TRICKY = {
    "PLAIN": "plain",
    "HASHED": "a#b c",
    "SPACES": "  padded  ",
    "UNICODE": "pässwörd ✓",
    "MULTI": "line1\nline2\n\nline4",
}
IMPORT_TEXT = (
    "# comment\r\n"
    "PLAIN=plain\r\n"
    'HASHED="a#b c"\n'
    "SPACES='  padded  '\n"
    "UNICODE=pässwörd ✓ # comment\n"
    'MULTI="""line1\nline2\n\nline4"""\n'
)


def test_secrets_lifecycle(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    out = ok(home, "secrets", "import", "-a", APP, stdin=IMPORT_TEXT)
    assert out == "Secrets are staged for the first deployment\n"
    assert control.secrets(home, APP) == TRICKY
    assert set(control.secret_statuses(home, APP).values()) == {"Staged"}
    assert control.releases(home, APP) == []

    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n')
    ok(home, "deploy", cwd=workdir)
    assert set(control.secret_statuses(home, APP).values()) == {"Deployed"}

    out = ok(home, "secrets", "set", "NEW=-", "-a", APP, "--stage", stdin="  from stdin \n")
    assert out.startswith("Secrets have been staged, but not set on VMs. Deploy or update machines")
    assert control.secrets(home, APP)["NEW"] == "from stdin"
    assert control.secret_statuses(home, APP)["NEW"] == "Staged"
    assert len(control.releases(home, APP)) == 1

    ok(home, "secrets", "deploy", "-a", APP)
    assert control.secret_statuses(home, APP)["NEW"] == "Deployed"
    assert len(control.releases(home, APP)) == 2

    ok(home, "secrets", "unset", "NEW", "NEVER_SET", "-a", APP)  # unknown names are fine; restarts machines
    assert "NEW" not in control.secrets(home, APP)
    assert [r["version"] for r in control.releases(home, APP)] == [1, 2, 3]
    assert control.current_release(home, APP)["version"] == 3  # type: ignore[index]


def test_secrets_errors(home: Path) -> None:
    control.create_app(home, APP)
    assert fails(home, "secrets", "import", "-a", APP, stdin="") == (
        "Error: requires at least one SECRET=VALUE pair\n"
    )
    assert fails(home, "secrets", "import", "-a", APP, stdin="OK=1\nbroken\n") == (
        "Error: Failed to parse secrets from stdin: Secrets must be provided as NAME=VALUE pairs "
        "(broken is invalid)\n"
    )
    assert "'NOEQUALS': must be in the format NAME=VALUE" in fails(
        home, "secrets", "set", "NOEQUALS", "-a", APP
    )
    assert "expects standard input but none provided" in fails(home, "secrets", "set", "K=-", "-a", APP)
    assert fails(home, "secrets", "deploy", "-a", APP) == "Error: no machines available to deploy\n"
    assert control.secrets(home, APP) == {}
    assert 'Could not find App "ghost"' in fails(home, "secrets", "list", "-a", "ghost")


@pytest.mark.parametrize(
    ("version", "keys"),
    [
        ("0.3.177", {"Name", "Digest", "CreatedAt"}),
        ("0.3.178", {"name", "digest", "updated_at", "created_at"}),
        ("0.4.5", {"name", "digest", "updated_at", "created_at"}),
        ("0.4.6", {"name", "digest", "status"}),
        ("0.4.87", {"name", "digest", "status"}),
    ],
)
def test_secrets_list_shape_per_era(home: Path, version: str, keys: set[str]) -> None:
    control.set_version(home, version)
    control.create_app(home, APP)
    ok(home, "secrets", "set", "-a", APP, "ONE=1", "--stage")
    listed = json.loads(ok(home, "secrets", "list", "-a", APP, "-j"))
    assert len(listed) == 1 and set(listed[0]) == keys
    entry = listed[0]
    digest = entry.get("digest", entry.get("Digest"))
    if version == "0.3.177":
        assert digest == hashlib.md5(b"1").hexdigest()
    else:
        assert re.fullmatch(r"[0-9a-f]{16}", digest)
    if "status" in entry:
        assert entry["status"] == "Staged"


# --- deploy -------------------------------------------------------------------------------------------------


def test_healthy_deploy(home: Path, deployed: Path) -> None:
    (release,) = control.releases(home, APP)
    assert release["status"] == "complete" and release["image_ref"] == IMAGE and release["version"] == 1
    (machine,) = control.machines(home, APP)
    assert re.fullmatch(r"[0-9a-f]{14}", machine["id"])
    assert machine["config"]["env"]["MODE"] == "prod"
    assert machine["config"]["metadata"]["fly_process_group"] == "app"
    assert machine["config"]["metadata"]["fly_release_version"] == "1"
    assert machine["region"] == "ord"
    checks = json.loads(ok(home, "checks", "list", "-a", APP, "-j"))
    assert [c["status"] for c in checks[machine["id"]]] == ["passing"]
    status = json.loads(ok(home, "status", "-a", APP, "-j"))
    assert set(status) == {
        "AppURL",
        "Deployed",
        "Hostname",
        "ID",
        "Machines",
        "Name",
        "Organization",
        "PlatformVersion",
        "Status",
        "Version",
    }
    assert status["Version"] == 1 and status["Deployed"] is True
    (listed,) = json.loads(ok(home, "machines", "ls", "-a", APP, "--json"))
    assert {
        "id",
        "name",
        "state",
        "region",
        "image_ref",
        "private_ip",
        "created_at",
        "config",
        "checks",
    } <= set(listed)
    assert listed["image_ref"]["repository"] == "sim-app" and listed["image_ref"]["tag"] == "v1"

    # a second deploy updates the same machine, emits the release JSON when asked
    out = ok(
        home, "deploy", "--strategy", "immediate", cwd=deployed, env_extra={"FLY_EMIT_RELEASE_JSON": "1"}
    )
    assert "Visit your newly deployed app at https://sim-app.fly.dev/" in out
    emitted = json.loads(out.strip().splitlines()[-1])
    assert set(emitted) == {"id", "version", "image_ref"} and emitted["version"] == 2
    assert [m["id"] for m in control.machines(home, APP)] == [machine["id"]]
    control.set_version(home, "0.4.55")  # FLY_EMIT_RELEASE_JSON arrived in v0.4.56
    out = ok(home, "deploy", cwd=deployed, env_extra={"FLY_EMIT_RELEASE_JSON": "1"})
    assert out.strip().splitlines()[-1].startswith("Visit your newly deployed app")


def test_unhealthy_deploy_keeps_new_image_current(home: Path, deployed: Path) -> None:
    control.add_image(home, "registry.fly.io/sim-app:v2")
    control.set_health_plan(home, APP, ["fail", "pass"])
    err = fails(home, "deploy", "-i", "registry.fly.io/sim-app:v2", cwd=deployed)
    mid = control.machines(home, APP)[0]["id"]
    assert err.startswith(
        f"Error: failed to update machine {mid}: Unrecoverable error: timeout reached waiting for health "
        f"checks to pass for machine {mid}: "
    )
    releases = control.releases(home, APP)
    assert [r["status"] for r in releases] == ["complete", "failed"]
    current = control.current_release(home, APP)
    assert current is not None and current["image_ref"] == "registry.fly.io/sim-app:v2"  # no rollback
    checks = json.loads(ok(home, "checks", "list", "-a", APP, "--json"))
    assert checks[mid][0]["status"] == "critical"
    # the plan's next entry passes
    ok(home, "deploy", "-i", IMAGE, cwd=deployed)
    assert control.releases(home, APP)[-1]["status"] == "complete"
    # unhealthy image patterns, and --detach not waiting
    control.mark_image_unhealthy(home, "*:bad-*")
    control.add_image(home, "registry.fly.io/sim-app:bad-1")
    fails(home, "deploy", "-i", "registry.fly.io/sim-app:bad-1", cwd=deployed)
    assert ok(home, "deploy", "-i", "registry.fly.io/sim-app:bad-1", "--detach", cwd=deployed)
    assert control.releases(home, APP)[-1]["status"] == "failed"
    assert control.app_healthy(home, APP) is False


def test_nixpacks_and_image_errors(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    workdir = tmp_path / "app"
    write_toml(workdir, "")
    assert "does not have a Dockerfile or buildpacks configured" in fails(home, "deploy", cwd=workdir)
    assert fails(home, "deploy", "--image", "registry.fly.io/sim-app:nope", cwd=workdir) == (
        'Error: could not find image "registry.fly.io/sim-app:nope"\n'
    )
    ok(home, "deploy", "--nixpacks", cwd=workdir)
    ref = control.releases(home, APP)[-1]["image_ref"]
    assert re.fullmatch(r"registry\.fly\.io/sim-app:deployment-[0-9A-HJKMNP-TV-Z]{26}", ref)
    ok(home, "deploy", "--nixpacks", "--image-label", "nix-abc", cwd=workdir)
    assert control.releases(home, APP)[-1]["image_ref"] == "registry.fly.io/sim-app:nix-abc"
    ok(
        home, "deploy", "--image", ref, "--strategy", "immediate", cwd=workdir
    )  # rollback = redeploy old image
    assert control.releases(home, APP)[-1]["image_ref"] == ref


def test_deploy_config_and_strategy_errors(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    err = fails(home, "deploy", "-c", "missing.toml", "--nixpacks", cwd=tmp_path)
    assert err.startswith(f"Error: failed loading app config from {tmp_path / 'missing.toml'}: ")
    (tmp_path / "broken.toml").write_text("app = [unclosed\n")
    assert "failed loading app config from" in fails(home, "deploy", "-c", "broken.toml", cwd=tmp_path)
    workdir = tmp_path / "app"
    write_toml(workdir, '[[mounts]]\nsource = "data"\ndestination = "/data"\n')
    for strategy in ("canary", "bluegreen", "sideways"):
        err = fails(home, "deploy", "-i", IMAGE, "--strategy", strategy, cwd=workdir)
        assert err.rstrip().endswith("Error: App configuration is not valid")
    write_toml(workdir, "")
    assert "App configuration is not valid" in fails(
        home, "deploy", "-i", IMAGE, "--strategy", "bluegreen", cwd=workdir
    )
    assert 'time: invalid duration "soon"' in fails(
        home, "deploy", "-i", IMAGE, "--wait-timeout", "soon", cwd=workdir
    )
    for value in ("120", "2m30s", "none"):
        ok(home, "deploy", "-i", IMAGE, "--wait-timeout", value, cwd=workdir)
    assert 'Could not find App "ghost"' in fails(home, "deploy", "-a", "ghost", "-i", IMAGE, cwd=workdir)


def test_first_deploy_creates_volumes_and_process_group_machines(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(
        workdir,
        f'[build]\nimage = "{IMAGE}"\n[processes]\nweb = "serve --port 8080"\nworker = "work"\n'
        '[[mounts]]\nsource = "data"\ndestination = "/data"\nprocesses = ["web"]\n',
    )
    ok(home, "deploy", cwd=workdir)
    machines = control.machines(home, APP)
    groups = {m["config"]["metadata"]["fly_process_group"]: m for m in machines}
    assert set(groups) == {"web", "worker"}
    assert groups["web"]["config"]["init"]["cmd"] == ["serve", "--port", "8080"]
    (volume,) = control.volumes(home, APP)
    assert volume["name"] == "data" and volume["region"] == "ord"
    assert volume["attached_machine_id"] == groups["web"]["id"]
    assert groups["web"]["config"]["mounts"][0]["path"] == "/data"
    ok(home, "deploy", cwd=workdir)  # updates, no new volumes or machines
    assert len(control.volumes(home, APP)) == 1 and len(control.machines(home, APP)) == 2


def test_deploy_finds_images_in_a_local_registry(home: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Accept", "")))
            if self.path == "/v2/team/sim-app/manifests/good":
                self.send_response(200)
                self.send_header("Docker-Content-Digest", "sha256:" + "ab" * 32)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.end_headers()
                self.wfile.write(b"{}")
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        control.create_app(home, APP)
        workdir = tmp_path / "app"
        write_toml(workdir, "")
        good = f"127.0.0.1:{port}/team/sim-app:good"
        ok(home, "deploy", "--image", good, cwd=workdir)
        assert control.machines(home, APP)[0]["image_ref"]["digest"] == "sha256:" + "ab" * 32
        bad = f"localhost:{port}/team/sim-app:missing"
        assert fails(home, "deploy", "--image", bad, cwd=workdir) == f'Error: could not find image "{bad}"\n'
    finally:
        server.shutdown()
        server.server_close()
    assert seen[0][0] == "/v2/team/sim-app/manifests/good"
    assert "application/vnd.docker.distribution.manifest.v2+json" in seen[0][1]
    assert "application/vnd.oci.image.manifest.v1+json" in seen[0][1]


# --- releases, logs -----------------------------------------------------------------------------------------


def test_releases_newest_first_and_capped(home: Path, deployed: Path) -> None:
    ok(home, "deploy", cwd=deployed)
    listed = json.loads(ok(home, "releases", "-a", APP, "-j"))
    assert [r["Version"] for r in listed] == [2, 1]
    assert set(listed[0]) == {
        "ID",
        "Version",
        "Stable",
        "InProgress",
        "Reason",
        "Description",
        "Status",
        "DeploymentStrategy",
        "Metadata",
        "User",
        "EvaluationID",
        "CreatedAt",
        "ImageRef",
    }
    assert listed[0]["Status"] == "complete" and listed[0]["ImageRef"] == IMAGE
    with control.edit(home) as st:
        template = st["apps"][APP]["releases"][-1]
        st["apps"][APP]["releases"] += [{**template, "version": v} for v in range(3, 31)]
    listed = json.loads(ok(home, "releases", "-a", APP, "--json"))
    assert len(listed) == 25 and listed[0]["Version"] == 30 and listed[-1]["Version"] == 6
    assert IMAGE in ok(home, "releases", "-a", APP, "--image")


def test_logs_text_json_and_no_tail_hang(home: Path, deployed: Path, tmp_path: Path) -> None:
    text = ok(home, "logs", "-a", APP, "--no-tail")
    mid = control.machines(home, APP)[0]["id"]
    assert re.search(
        rf"^\S+Z app\[{mid}\] ord \[info\]Pulling container image {re.escape(IMAGE)}$", text, re.M
    )
    stream = ok(home, "logs", "-a", APP, "-n", "-j")
    first, _ = json.JSONDecoder().raw_decode(stream)
    assert set(first) == {"level", "instance", "message", "region", "timestamp", "meta"}

    control.create_app(home, "quiet")
    proc = subprocess.Popen(
        [sys.executable, str(control.FLYCTL), "logs", "-a", "quiet", "--no-tail"],
        env=control.env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)
        assert proc.poll() is None, "logs --no-tail with no logs must keep polling (faithful to flyctl)"
        ok(home, "apps", "list")  # a polling `logs` does not hold the state lock
        control.add_log(home, "quiet", "finally something")
        out, _ = proc.communicate(timeout=10)
        assert out.decode().endswith("[info]finally something\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- faults -------------------------------------------------------------------------------------------------


def test_fault_injection(home: Path) -> None:
    control.inject_fault(home, "apps create", times=1, exit_code=2, message="Error: boom")
    assert fails(home, "apps", "create", APP, code=2) == "Error: boom\n"
    assert control.apps(home) == []
    ok(home, "apps", "create", APP)  # used up
    control.inject_fault(home, "volume ls", times=-1)  # aliases normalised; always
    for _ in range(2):
        assert "simulated failure" in fails(home, "volumes", "list", "-a", APP)
    assert control.faults(home)[0]["command"] == "volumes list"
    control.clear_faults(home)
    control.inject_fault(home, "secrets import", after_effect=True, message="Error: half-way")
    assert fails(home, "secrets", "import", "-a", APP, stdin="K=v\n") == "Error: half-way\n"
    assert control.secrets(home, APP) == {"K": "v"}  # the effect happened before the failure


def test_delay_then_sigint_exits_127_without_effect(home: Path) -> None:
    control.inject_fault(home, "apps create", delay=30, exit_code=1)
    proc = subprocess.Popen(
        [sys.executable, str(control.FLYCTL), "apps", "create", APP],
        env=control.env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 10
    while control.read_state(home)["faults"] and time.time() < deadline:
        time.sleep(0.05)  # the fault is consumed when the command starts its delay
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 127
    assert control.apps(home) == []
    assert control.calls(home)[-1]["exit"] == 127
    control.set_delay(home, "apps list", 0.3)
    started = time.time()
    ok(home, "apps", "list")
    assert time.time() - started >= 0.3


# --- health server, calls.jsonl, concurrency ----------------------------------------------------------------


def _get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_server_follows_current_release(home: Path, tmp_path: Path) -> None:
    with control.start_health_server(home) as server:
        assert server.url_template.endswith("/{app}/health")
        assert _get(server.url(APP))[0] == 404
        control.create_app(home, APP)
        assert _get(server.url(APP))[0] == 503  # nothing deployed yet
        control.add_image(home, IMAGE)
        workdir = tmp_path / "app"
        write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n')
        ok(home, "deploy", cwd=workdir)
        assert _get(server.url(APP)) == (200, '{"status":"ok"}')
        control.set_health_plan(home, APP, ["fail"])
        fails(home, "deploy", cwd=workdir)
        assert _get(server.url(APP))[0] == 503
        ok(home, "deploy", cwd=workdir)
        assert _get(server.url(APP))[0] == 200


def test_calls_record_argv_but_never_stdin(home: Path) -> None:
    control.create_app(home, APP)
    secret = "s3cr3t-value-that-must-not-leak"
    ok(home, "secrets", "import", "-a", APP, stdin=f"TOKEN={secret}\n")
    ok(home, "secrets", "set", "OTHER=-", "-a", APP, stdin=secret)
    raw = (home / "calls.jsonl").read_text()
    assert secret not in raw
    calls = control.calls(home)
    assert [c["argv"][:2] for c in calls] == [["secrets", "import"], ["secrets", "set"]]
    assert calls[0]["stdin_bytes"] == len(f"TOKEN={secret}\n") and calls[0]["exit"] == 0
    assert calls[0]["command"] == "secrets import" and calls[0]["cwd"]
    assert control.secrets(home, APP) == {"TOKEN": secret, "OTHER": secret}


def test_concurrent_invocations_do_not_corrupt_state(home: Path) -> None:
    control.create_app(home, APP)
    env = control.env(home)
    procs = [
        subprocess.Popen(
            [sys.executable, str(control.FLYCTL), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(6)
        for args in (
            ["apps", "create", f"app-{n}"],
            ["volumes", "create", "data", "-a", APP, "-y", "-r", "ord"],
            ["secrets", "set", f"K{n}=v{n}", "-a", APP, "--stage"],
        )
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    state = json.loads((home / "state.json").read_text())
    assert {f"app-{n}" for n in range(6)} <= set(state["apps"])
    assert len(control.volumes(home, APP)) == 6
    assert control.secrets(home, APP) == {f"K{n}": f"v{n}" for n in range(6)}
    assert len(control.calls(home)) == 18


@pytest.fixture(autouse=True)
def _no_real_fly_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in [k for k in os.environ if k.startswith("FLY_")]:
        monkeypatch.delenv(key)
    yield
