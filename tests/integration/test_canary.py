"""The canary scan: every task, on success and failure paths, with canary secret values. No value may appear
in any output, any argv flyctl received, any file nixfly wrote (other than .env.fly itself), or any error."""

from __future__ import annotations

import json
import subprocess

from flyctl_sim import control
from helpers.project import CANARY

FAST = ("--skip-build", "--skip-smoke")
GOOGLE_KEY = "canary-google-private-key-5e1d"


def test_no_secret_value_escapes_anywhere(project, fake_result):
    google = {"type": "service_account", "private_key": GOOGLE_KEY, "client_email": "x@y.iam"}
    (project.root / "google.json").write_text(json.dumps(google, indent=2))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": "google.json"}
    canaries = [*CANARY.values(), GOOGLE_KEY]
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
