"""The simulated flyctl as a program: executables, cobra parsing, auth, apps, faults, calls, state."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flyctl_sim import control
from helpers.sim import APP, fails, fly, ok, write_toml


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
    assert "Error: Validation failed: Name under 63 chars using numbers, lowercase letters and dashes" in err
    assert "Name under 63 chars" in fails(home, "apps", "create", "a" * 64)
    ok(home, "apps", "create", "a" * 63)


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
    assert "two app names specified a-1 and b-2, only one may be specified" in fails(
        home, "apps", "create", "a-1", "--name", "b-2"
    )
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
    assert json.loads(ok(home, "status", "-j", "-c", "cfgdir/fly.toml", cwd=tmp_path))["Name"] == APP
    # command.go LoadAppConfigIfPresent reads a directory as a file first: an error, even with -a
    assert fails(home, "status", "-a", APP, "-c", "cfgdir", cwd=tmp_path) == (
        "Error: failed loading app config from cfgdir: read cfgdir: is a directory\n"
    )
    assert json.loads(ok(home, "status", "-j", cwd=tmp_path / "cfgdir"))["Name"] == APP
    # -a beats FLY_APP beats fly.toml
    err = fails(home, "status", "-a", "nope", cwd=tmp_path / "cfgdir", env_extra={"FLY_APP": APP})
    assert err == 'Error: failed to get app: Could not find App "nope"\n'


# --- volumes ------------------------------------------------------------------------------------------------


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


def test_latency_knob(home: Path) -> None:
    control.set_latency(home, 0.4)
    started = time.monotonic()
    ok(home, "apps", "list")
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    fails(home, "apps", "list", "--nope")  # a parse error answers at once: no API call
    assert time.monotonic() - started < 0.4
    control.set_latency(home, 0)
    started = time.monotonic()
    ok(home, "apps", "list", env_extra={"FLYCTL_SIM_LATENCY": "0.3"})  # the environment wins
    assert time.monotonic() - started >= 0.3
