"""nixfly.flyctl: the argv nixfly gives flyctl, how it reads flyctl's output, and Fly's token rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flyctl_sim.control import BIN_DIR
from helpers.fakes import ScriptedRunner

from nixfly import flyctl
from nixfly.errors import CommandError, NixflyError
from nixfly.flyctl import (
    AppMissing,
    Check,
    Deployed,
    Flyctl,
    NotLoggedIn,
    ReleaseUnhealthy,
    parse_checks,
    parse_deployed,
    parse_json,
    parse_machine,
    parse_secrets,
    parse_status,
    registry_password,
)


@pytest.fixture(autouse=True)
def flyctl_on_path(monkeypatch):
    """``find_executable`` must find a flyctl (the simulator's; the runner below never starts it)."""
    monkeypatch.setenv("PATH", str(BIN_DIR))
    for name in flyctl.TOKEN_ENV:
        monkeypatch.delenv(name, raising=False)


def fly(runner: ScriptedRunner) -> Flyctl:
    return Flyctl(runner)


# --- fly-go tokens/tokens.go: the registry password ---------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "password"),
    [
        ("FlyV1 fm2_a,fm2_b,oauth", "fm2_a,fm2_b"),  # macaroons only, when there are any
        ("fm1r_x, fm1a_y", "fm1r_x,fm1a_y"),  # each part trimmed
        ("Bearer user-token", "user-token"),
        ("  flyv1   bearer  fm2_z  ", "fm2_z"),  # schemes case-insensitive, stripped repeatedly
        ("oauth1,oauth2", "oauth1,oauth2"),  # no macaroons: the other tokens
        ("fm3_new,oauth", "fm3_new,oauth"),  # an unknown prefix is not a macaroon
        ("Basic abc", "Basic abc"),  # not a scheme Fly strips
        ("FlyV1\tfm2_a", "FlyV1\tfm2_a"),  # Go cuts at a space only
        ("Bearer", "Bearer"),
        ("fm2_a,,fm2_b", "fm2_a,fm2_b"),
    ],
)
def test_registry_password_follows_tokens_docker(token, password):
    assert registry_password(token) == password


def test_the_token_comes_from_the_environment_first(monkeypatch):
    monkeypatch.setenv("FLY_API_TOKEN", "FlyV1 fm2_from_api")
    monkeypatch.setenv("FLY_ACCESS_TOKEN", "FlyV1 fm2_from_access")
    runner = ScriptedRunner()
    assert fly(runner).registry_password() == "fm2_from_access"
    assert runner.calls == []


def test_an_empty_environment_token_falls_back_to_the_session(monkeypatch):
    monkeypatch.setenv("FLY_ACCESS_TOKEN", "  ")
    runner = ScriptedRunner().on("auth", "token", stdout="notice\nfm2_session\n")
    assert fly(runner).token() == "fm2_session"
    assert runner.lines() == ["auth token"]


# --- the release line of `flyctl deploy` --------------------------------------------------------------------


RELEASE = '{"id":"rel_1","version":7,"image_ref":"registry.fly.io/app:deployment-1"}'


def test_parse_deployed_finds_the_release_line_among_build_output():
    stdout = "\n".join(
        [
            "#5 [stage-0 2/3] RUN echo {not json}",
            '{"build": "step", "id": 1}',
            RELEASE,
            "Visit your newly deployed app at https://app.fly.dev/",
        ]
    )
    assert parse_deployed(stdout) == Deployed("rel_1", 7, "registry.fly.io/app:deployment-1")


def test_parse_deployed_takes_the_last_release_line():
    later = RELEASE.replace('"version":7', '"version":8')
    assert parse_deployed(f"{RELEASE}\n{later}\n").version == 8  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "Visit your newly deployed app",
        '{"id":"rel_1","version":7}',  # not the three keys
        '{"id":"rel_1","version":7,"image_ref":"x","extra":1}',
        '{"id":"rel_1","version":"seven","image_ref":"x"}',
        '{"id":"rel_1","version":7,"image_ref":"x"',  # cut off
    ],
)
def test_parse_deployed_without_a_release_line(stdout):
    assert parse_deployed(stdout) is None


# --- reading flyctl's JSON ----------------------------------------------------------------------------------


def test_parse_json_skips_a_notice_before_the_document():
    assert parse_json('A new version is available\n{"a": [1]}', "x") == {"a": [1]}
    assert parse_json("notice\n[1, 2]", "x") == [1, 2]


def test_parse_json_failures_say_what_was_read():
    with pytest.raises(NixflyError, match="printed no JSON for status"):
        parse_json("nothing here", "status")
    with pytest.raises(NixflyError, match="unreadable JSON for status"):
        parse_json("{nope", "status")


def test_parse_secrets_reads_all_three_eras():
    data = [
        {"Name": "OLD", "Digest": "x"},
        {"name": "MID", "digest": "y"},
        {"name": "NEW", "status": "Staged"},
    ]
    assert [(s.name, s.status) for s in parse_secrets(data)] == [("OLD", ""), ("MID", ""), ("NEW", "Staged")]
    assert parse_secrets({"not": "a list"}) == []


def test_parse_machine_reads_release_image_and_checks():
    item = {
        "id": "m1",
        "state": "started",
        "region": "iad",
        "image_ref": {"registry": "registry.fly.io", "repository": "app", "tag": "deployment-1"},
        "config": {"metadata": {"fly_release_version": "3", "fly_process_group": "web"}},
        "checks": [{"name": "http", "status": "passing"}, "junk"],
    }
    found = parse_machine(item)
    assert (found.id, found.state, found.region) == ("m1", "started", "iad")
    assert found.image == "registry.fly.io/app:deployment-1"
    assert (found.release_version, found.group) == (3, "web")
    assert found.checks == (Check("http", "passing"),)


def test_parse_machine_counts_the_checks_its_config_defines():
    """leasable_machine.go WaitForHealthchecksToPass: len(cfg.Checks) + len(svc.Checks) of every service."""
    config = {
        "checks": {"alive": {"type": "http"}, "db": {"type": "tcp"}},
        "services": [{"checks": [{"type": "tcp"}]}, {"internal_port": 9}, "junk"],
    }
    assert parse_machine({"id": "m1", "config": config}).configured_checks == 3
    assert parse_machine({"id": "m1", "config": {}}).configured_checks == 0


def test_parse_machine_prefers_the_configured_image_and_defaults_the_rest():
    found = parse_machine({"id": "m2", "image_ref": {"repository": "app"}, "config": {"image": "reg/app:v9"}})
    assert found.image == "reg/app:v9"
    assert (found.release_version, found.group, found.checks) == (0, "app", ())
    assert parse_machine({"image_ref": {"registry": "r", "repository": "app"}}).image == "r/app"
    # fly-go MachineImageRef.Digest: what the machine runs, whatever the ref or config says.
    assert found.digest == ""
    assert parse_machine({"image_ref": {"repository": "app", "digest": "sha256:1"}}).digest == "sha256:1"


def test_parse_status_and_checks():
    printed = {"ID": "app", "Status": "deployed", "Version": 4, "Machines": [{"id": "m1"}], "AppURL": "u"}
    status = parse_status(printed)
    assert (status.name, status.status, status.version) == ("app", "deployed", 4)
    assert status.printed == printed  # all of it, for `inv status --json`
    assert [m.id for m in status.machines] == ["m1"]
    assert parse_status(None).machines == ()
    checks = parse_checks({"m1": [{"name": "http", "status": "critical"}]})
    assert checks == {"m1": (Check("http", "critical"),)}
    assert parse_checks([]) == {}


# --- reads through the runner -------------------------------------------------------------------------------


def test_reads_ask_for_json_without_the_update_check():
    runner = ScriptedRunner().on("auth", "whoami", stdout='{"email": "me@example.com"}')
    assert fly(runner).whoami() == "me@example.com"
    [call] = runner.calls
    assert call.argv == ("flyctl", "auth", "whoami", "--json")
    assert call.env["FLY_NO_UPDATE_CHECK"] == "1"


def test_a_missing_app_reads_as_none_at_once():
    runner = ScriptedRunner().on("status", code=1, stderr='Error: Could not find App "app"\n')
    assert fly(runner).app_status("app") is None
    assert len(runner.calls) == 1  # not retried: the answer is final


def test_a_missing_app_is_app_missing_for_other_reads():
    runner = ScriptedRunner().on("volumes", "list", code=1, stderr='Error: Could not find App "app"\n')
    with pytest.raises(AppMissing, match="volumes list: Error: Could not find App"):
        fly(runner).volumes("app")


def test_failed_reads_are_retried_then_answer():
    failure = {"code": 1, "stderr": "Error: 502 Bad Gateway"}
    runner = ScriptedRunner().on("releases", **failure)
    runner.rules[0].answers += [runner.rules[0].answers[0], _ok('[{"Version": 1, "Status": "complete"}]')]
    found = fly(runner).releases("app")
    assert [r.version for r in found] == [1]
    assert len(runner.calls) == 3


def test_a_read_failing_every_time_is_a_command_error():
    runner = ScriptedRunner().on("checks", "list", code=1, stderr="Error: 502 Bad Gateway")
    with pytest.raises(CommandError) as info:
        fly(runner).checks("app")
    assert info.value.kind == "failed" and "502 Bad Gateway" in info.value.message
    assert len(runner.calls) == 1 + flyctl.READ_RETRIES


@pytest.mark.parametrize(
    "stderr", ["Error: no access token available. Please login", "You must be authenticated"]
)
def test_not_logged_in_is_its_own_error(stderr):
    runner = ScriptedRunner().on("auth", "whoami", code=1, stderr=stderr)
    with pytest.raises(NotLoggedIn) as info:
        fly(runner).whoami()
    assert info.value.hint == flyctl.LOGIN_HINT
    with pytest.raises(NotLoggedIn):
        fly(ScriptedRunner().on("apps", "create", code=1, stderr=stderr)).create_app("app")


def test_releases_newest_first_from_either_key_style():
    data = [{"version": 1, "status": "complete", "image_ref": "a"}, {"Version": 3, "ImageRef": "c"}]
    runner = ScriptedRunner().on("releases", stdout=json.dumps(data))
    assert [(r.version, r.image_ref) for r in fly(runner).releases("app")] == [(3, "c"), (1, "a")]


def test_volumes_are_read_with_their_attachment():
    data = [{"id": "vol_1", "name": "data", "region": "iad", "state": "created", "attached_machine_id": ""}]
    [found] = fly(ScriptedRunner().on("volumes", "list", stdout=json.dumps(data))).volumes("app")
    assert (found.id, found.attached_machine_id, found.size_gb) == ("vol_1", None, 1)


def test_logs_that_never_end_read_as_none():
    runner = ScriptedRunner()

    def forever(call):
        raise CommandError("timed out", kind="timed out", argv=call.argv)

    runner.answer("logs", with_=forever)
    assert fly(runner).logs("app", timeout=2) is None
    assert runner.calls[0].line == "logs --app app --no-tail" and runner.calls[0].timeout == 2
    runner.answer("logs", with_=lambda call: _ok("line one\n"))
    assert fly(runner).logs("app", timeout=2) == "line one\n"


# --- changes ------------------------------------------------------------------------------------------------


def test_create_app_with_and_without_an_org():
    runner = ScriptedRunner().on("apps", "create")
    fly(runner).create_app("app")
    fly(runner).create_app("app", "acme")
    assert runner.lines() == ["apps create app", "apps create app --org acme"]


@pytest.mark.parametrize(
    ("stderr", "says"),
    [
        ("Error: Validation failed: Name has already been taken", "taken on Fly.io"),
        ("Error: org slug must be specified when not running interactively", "needs an organization"),
    ],
)
def test_create_app_failures_say_what_to_do(stderr, says):
    with pytest.raises(NixflyError, match=says):
        fly(ScriptedRunner().on("apps", "create", code=1, stderr=stderr)).create_app("app")


def test_mutations_are_never_retried():
    runner = ScriptedRunner().on("volumes", "create", code=1, stderr="Error: 502")
    with pytest.raises(CommandError):
        fly(runner).create_volume("app", "data", "iad", 1)
    assert runner.lines() == ["volumes create data --app app --region iad --size 1 --yes"]


def test_secrets_travel_on_stdin_only():
    runner = ScriptedRunner().on("secrets", "import")
    fly(runner).import_secrets("app", "TOKEN=hunter2-secret\n", stage=True)
    fly(runner).import_secrets("app", "TOKEN=hunter2-secret\n", stage=False)
    assert runner.lines() == ["secrets import --app app --stage", "secrets import --app app"]
    assert all(c.stdin == "TOKEN=hunter2-secret\n" for c in runner.calls)
    assert not any("hunter2" in arg for c in runner.calls for arg in c.argv)


def test_deploy_an_image():
    runner = ScriptedRunner().on("deploy", stdout=f"building\n{RELEASE}\nVisit …\n")
    deployed = fly(runner).deploy("app", Path("fly.toml"), image="reg/app:nix-1", strategy="canary")
    assert deployed == Deployed("rel_1", 7, "registry.fly.io/app:deployment-1")
    [call] = runner.calls
    assert call.line == "deploy --app app --config fly.toml --yes --image reg/app:nix-1 --strategy canary"
    assert call.env["FLY_EMIT_RELEASE_JSON"] == "1" and "NIXPACKS_CONFIG_FILE" not in call.env


def test_deploy_with_nixpacks_names_the_mode_config_in_the_environment():
    runner = ScriptedRunner().on(
        "deploy", stdout='{"id":"r1","version":3,"image_ref":"registry.fly.io/app:d"}'
    )
    made = fly(runner).deploy("app", Path("f.toml"), nixpacks_config="nixpacks-ai-server.toml")
    assert made == Deployed("r1", 3, "registry.fly.io/app:d")
    [call] = runner.calls
    assert call.line == "deploy --app app --config f.toml --yes --nixpacks"
    assert call.env["NIXPACKS_CONFIG_FILE"] == "nixpacks-ai-server.toml"


def test_without_a_release_line_the_newest_release_is_the_deploys():
    """flyctl before v0.4.56 prints no release line: the newest release (one more read) is this deploy's."""
    releases = '[{"Version": 4, "Status": "complete", "ImageRef": "registry.fly.io/app:d4"}]'
    runner = (
        ScriptedRunner().on("deploy", stdout="Visit your newly deployed app").on("releases", stdout=releases)
    )
    assert fly(runner).deploy("app", Path("f.toml"), image="x") == Deployed("", 4, "registry.fly.io/app:d4")
    assert [c.line.split(" --")[0] for c in runner.calls] == ["deploy", "releases"]


def test_a_deploy_whose_checks_never_pass_is_release_unhealthy():
    stderr = "Error: timeout reached waiting for health checks to pass for machine m1"
    with pytest.raises(ReleaseUnhealthy, match="waiting for health checks"):
        fly(ScriptedRunner().on("deploy", code=1, stderr=stderr)).deploy("app", Path("f.toml"), image="x")


def test_a_dry_run_deploy_runs_nothing_and_returns_no_release():
    runner = ScriptedRunner(dry_run=True)
    assert fly(runner).deploy("app", Path("f.toml"), image="x") is None
    assert runner.calls == []


# --- finding flyctl -----------------------------------------------------------------------------------------


def test_find_executable_accepts_fly_for_flyctl(monkeypatch, tmp_path):
    (tmp_path / "fly").symlink_to(BIN_DIR / "fly")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert flyctl.find_executable("flyctl") == "fly"
    with pytest.raises(NixflyError, match="/opt/none/flyctl not found on PATH"):
        flyctl.find_executable("/opt/none/flyctl")


def _ok(stdout: str):
    from nixfly.runner import Completed

    return Completed((), 0, stdout)


def test_preview_calls_one_machine_list_and_destroy():
    runner = ScriptedRunner().on("deploy", stdout=f"{RELEASE}\n").on("apps", "destroy")
    runner.on("apps", "list", stdout='[{"ID": "a", "Name": "a"}, {"Name": "b-pr-1"}]')
    fly(runner).deploy("app", Path("fly.toml"), image="reg/app:nix-1", ha=False)
    assert fly(runner).apps() == ["a", "b-pr-1"]
    fly(runner).destroy_app("b-pr-1")
    assert runner.lines() == [
        "deploy --app app --config fly.toml --yes --image reg/app:nix-1 --ha=false",
        "apps list --json",
        "apps destroy b-pr-1 --yes",
    ]


# --- shapes: what flyctl's source prints, and what is refused ---------------------------------------------
GOOD_SHAPES = [
    ("version", {"Name": "flyctl", "Version": "0.4.87", "Commit": "x"}),
    ("auth whoami", {"email": "me@example.com"}),
    ("status", {"ID": "a", "Name": "a", "Version": 0, "Machines": None}),
    ("status", {"Name": "a", "Version": 3, "Machines": [{"id": "m1", "state": "started"}]}),
    ("volumes list", [{"id": "vol_1", "name": "data", "attached_machine_id": None}]),
    ("volumes list", None),
    ("secrets list", [{"name": "A", "digest": "d", "status": "Deployed"}, {"Name": "B", "Digest": "d"}]),
    ("releases", [{"ID": "r", "Version": 2, "Status": "complete", "ImageRef": "x"}]),
    ("releases", []),
    ("releases", None),
    ("platform regions", [{"code": "ams", "deprecated": False}]),
    ("checks list", {}),
    ("checks list", {"m1": [], "m2": [{"name": "servicecheck-00-http-8080", "status": "passing"}]}),
]
BAD_SHAPES = [
    ("version", [], "not the version object"),
    ("auth whoami", {"mail": "x"}, "no email"),
    ("status", [], "not the app object"),
    ("status", {"Name": "a", "Version": "3"}, "Version that is not an integer"),
    ("status", {"Name": "a", "Machines": {"m1": {}}}, "not the list of machine"),
    ("volumes list", {}, "not the list of volume"),
    ("volumes list", [{"name": "data"}], "volume #1: no id string"),
    ("secrets list", [1], "secret #1 is not an object"),
    ("releases", {}, "not the list of release"),
    ("releases", [{"Version": True}], "release #1: no integer Version"),
    ("platform regions", None, "not the list of region"),
    ("checks list", {"a": 1}, "machine 'a': a JSON int, not the list of check"),
    ("checks list", {"m1": [{"name": "c"}]}, "check #1: no status string"),
    ("checks list", [], "not the object of machine ids"),
]


@pytest.mark.parametrize(("what", "data"), GOOD_SHAPES)
def test_what_flyctl_prints_is_accepted(what, data):
    assert flyctl.checked(what, data) is data


@pytest.mark.parametrize(("what", "data", "wrong"), BAD_SHAPES)
def test_any_other_shape_is_an_error_naming_the_command(what, data, wrong):
    with pytest.raises(NixflyError) as info:
        flyctl.checked(what, data)
    assert info.value.message.startswith(f"flyctl {what} --json printed ")
    assert wrong in info.value.message and "flyctl version" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("call", "argv", "printed"),
    [
        (lambda fly: fly.releases("a"), ("releases",), "{}"),
        (lambda fly: fly.checks("a"), ("checks", "list"), '{"a":1}'),
    ],
)
def test_a_wrong_answer_stops_the_read(call, argv, printed):
    runner = ScriptedRunner().on(*argv, stdout=printed)
    with pytest.raises(NixflyError, match=rf"flyctl {' '.join(argv)} --json printed"):
        call(Flyctl(runner, str(BIN_DIR / "flyctl")))


def test_a_dry_run_shows_the_built_commands_and_never_a_secret(capsys):
    runner = ScriptedRunner(dry_run=True)
    fly(runner).import_secrets("app", "TOKEN=hunter2-secret\n", stage=True)
    fly(runner).deploy("app", Path("f.toml"), image="reg/app:v2", strategy="immediate")
    shown = capsys.readouterr().err
    assert "would run: flyctl secrets import --app app --stage < stdin" in shown
    deploy = "flyctl deploy --app app --config f.toml --yes --image reg/app:v2 --strategy immediate"
    assert f"would run: {deploy}" in shown
    assert "hunter2" not in shown and runner.calls == []
