"""The canary scan: every task, on success and failure paths, with canary secret values. No value may appear
in any output, any argv flyctl received, any file nixfly wrote (other than .env.fly itself), or any error:
on Fly (status and logs included, JSON too), on the local target (whose app prints its token), for refused
secrets, and in the traceback file nixfly writes when it hits a bug."""

from __future__ import annotations

import json
import stat
import subprocess

import pytest
from flyctl_sim import control
from helpers import tinyapps
from helpers.procs import free_port
from helpers.project import CANARY, require
from helpers.sshd import kill_session

from nixfly.errors import NixflyError

FAST = ("--skip-build", "--skip-smoke")
GOOGLE_KEY = "canary-google-private-key-5e1d"
FLY_TOKEN = "FlyV1 fm2_canary-fly-token-9c4b"


def test_no_secret_value_escapes_anywhere(project, fake_result):
    google = {"type": "service_account", "private_key": GOOGLE_KEY, "client_email": "x@y.iam"}
    (project.root / "google.json").write_text(json.dumps(google, indent=2))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": "google.json"}
    canaries = [*CANARY.values(), GOOGLE_KEY, FLY_TOKEN]
    outputs: list[str] = []

    def run(*args: str) -> None:
        result = project.inv(*args, env=env)
        outputs.extend([result.stdout, result.stderr])

    run("bundle", "--dry-run")
    run("deploy", "--dry-run", *FAST)
    run("bundle")
    run("doctor")
    run("apps.create")
    run("volumes.create")
    run("secrets", "--dry-run")
    run("secrets")
    run("deploy", *FAST)
    run("deploy", *FAST, "--force", "--json")
    run("status")
    run("status", "--json")
    run("releases")
    control.add_log(project.sim, "oneshot", "a log line")
    run("logs", "--timeout", "2")
    run("rollback")
    run("lock.status")
    # failure paths: flyctl failing while it holds the secrets on stdin, an unhealthy release and its rollback
    (project.root / ".env").write_text(f"CLAUDE_ACCESS_TOKEN={CANARY['CLAUDE_ACCESS_TOKEN']}-v2\n")
    control.inject_fault(
        project.sim, "secrets import", message="Error: import failed half-way", after_effect=True
    )
    run("deploy", *FAST)
    control.set_health_plan(project.sim, "oneshot", ["fail"])
    run("deploy", *FAST, "--force")
    run("deploy", "--app", "Not Valid", *FAST)
    run("image.push", "--dry-run")
    # secrets refused by name: a carriage return, and a value flyctl's import format cannot carry
    env = {**env, "CLAUDE_ACCESS_TOKEN": f"{CANARY['CLAUDE_ACCESS_TOKEN']}\rtail"}
    run("bundle")
    env["CLAUDE_ACCESS_TOKEN"] = CANARY["CLAUDE_ACCESS_TOKEN"] * 4000
    run("deploy", *FAST)
    # what an app prints of its secrets, one field of a JSON credential, and the Fly token nixfly runs with
    control.add_token(project.sim, FLY_TOKEN)
    env = {**env, "FLY_API_TOKEN": FLY_TOKEN}
    for line in (f"an app printing {CANARY['GH_TOKEN']}", f"key={GOOGLE_KEY}", f"token {FLY_TOKEN}"):
        control.add_log(project.sim, "oneshot", line)
    run("logs", "--timeout", "2")
    run("status", "--json")

    text = "\n".join(outputs)
    assert "error:" in text  # the failure paths really ran
    argvs = json.dumps([c["argv"] for c in project.flyctl_calls()])
    tracked = set(
        subprocess.run(
            ["git", "ls-files"], cwd=project.root, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    sources = {".env.fly", ".env", "google.json", "invoke.yaml"}
    written = {
        name: p.read_text(errors="replace")
        for p in project.root.rglob("*")
        if p.is_file()
        and ".git" not in p.parts
        and (name := str(p.relative_to(project.root))) not in tracked
        and name not in sources
    }
    assert any(name.startswith(".nixfly/") for name in written)  # nixfly's own files are scanned
    for canary in canaries:
        assert canary not in text, f"{canary} in task output"
        assert canary not in argvs, f"{canary} on a flyctl command line"
        for name, content in written.items():
            assert canary not in content, f"{canary} in {name}"
    assert control.secrets(project.sim, "oneshot")["CLAUDE_ACCESS_TOKEN"].startswith(
        CANARY["CLAUDE_ACCESS_TOKEN"]
    )


def test_local_target_status_logs_and_its_app_log(project, tmp_path):
    """The tiny app prints CLAUDE_ACCESS_TOKEN: the log file is its owner's alone, and what the tasks show
    of it is masked."""
    require("nix")
    apps = tinyapps.build(tmp_path / "tinyapps")
    tinyapps.use_local(project, port=free_port())
    try:
        tinyapps.point_result(project, apps["ok"])
        outputs = [project.inv("deploy", "--skip-build", "--skip-smoke", "--target", "local")]
        assert outputs[0].returncode == 0, outputs[0].stderr
        outputs += [
            project.inv("status", "--target", "local"),
            project.inv("status", "--target", "local", "--json"),
            project.inv("logs", "--target", "local"),
        ]
        log = project.root / ".nixfly" / "local" / "logs" / "oneshot.log"
        assert CANARY["CLAUDE_ACCESS_TOKEN"] in log.read_text()  # the app really printed it...
        assert stat.S_IMODE(log.stat().st_mode) == 0o600  # ...into a file no one else can read
        assert "token ***" in outputs[-1].stdout  # and `inv logs` shows the line, masked
        shown = "".join(o.stdout + o.stderr for o in outputs)
        for canary in CANARY.values():
            assert canary not in shown
        for path in (project.root / ".nixfly").rglob("*"):
            if path.is_file() and path != log:
                assert not any(c in path.read_text(errors="replace") for c in CANARY.values()), path
    finally:
        kill_session(tinyapps.pidfile(project))
        apps.kill_all()


def test_a_bug_is_reported_as_a_failure_and_its_crash_report_holds_no_secret(
    project, fake_result, tmp_path, monkeypatch, capsys
):
    """A bug inside a step (here: one whose message quotes a secret) ends in one line and a traceback file;
    neither holds the value."""
    from nixfly import config, engine
    from nixfly.fly import FlyTarget
    from nixfly.runner import here
    from nixfly.target import Options

    def crash(self, build, candidate):
        raise RuntimeError(f"unexpected answer {CANARY['CLAUDE_ACCESS_TOKEN']}")

    monkeypatch.setattr(FlyTarget, "push_image", crash)
    job_summary = tmp_path / "summary.md"
    for key, value in project.env.items():
        monkeypatch.setenv(key, value)
    # After the project's environment, which carries the caller's TMPDIR (CI sets one).
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(job_summary))
    monkeypatch.chdir(project.root)
    settings = config.resolve(
        {
            "builder": "nixpacks",
            "health": {"timeout": 2, "interval": 0.2, "max_interval": 0.5, "http_timeout": 1},
        },
        project.root,
    )
    with pytest.raises(NixflyError) as raised:
        options = Options(skip_build=True, skip_smoke=True, json_summary=True)
        engine.deploy(settings, here(settings), "fly", options)
    error = raised.value
    assert error.exit_code == 70 and "nixfly hit a bug in step image" in error.message
    [report] = tmp_path.glob("nixfly-crash-*.txt")
    text = report.read_text()
    assert "RuntimeError: unexpected answer ***" in text  # the traceback is there, masked
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is False
    assert [s["status"] for s in summary["steps"] if s["step"] == "image"] == ["failed"]
    markdown = job_summary.read_text()  # what GitHub shows on the run's page
    assert ": FAILED" in markdown and "| image | failed | nixfly hit a bug in step image" in markdown
    for canary in CANARY.values():
        assert canary not in text and canary not in str(error)
