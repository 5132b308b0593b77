"""`inv deploy --on user@host` to Fly: the Nix build and the smoke tests run on the build host (a real sshd on
127.0.0.1), the deploy itself runs here against the flyctl simulator."""

from __future__ import annotations

from flyctl_sim import control
from helpers.project import require, steps
from helpers.sshd import running_sshd


def test_fly_deploy_builds_and_smokes_on_the_build_host(project, tmp_path):
    require("nix")
    require("ssh")
    with running_sshd(tmp_path / "sshd") as server:
        env = {"NIXFLY_SSH_CONFIG": str(server.ssh_config), "SSH_AUTH_SOCK": ""}
        result = project.inv("deploy", "--on", server.endpoint, "--json", env=env)
        assert result.returncode == 0, result.stderr
    done = steps(result)
    assert done["build"][0] == "done"
    assert done["build"][1].startswith(f"built on {server.endpoint}: /nix/store/")
    assert done["smoke"] == ("done", f"smoke tests passed on {server.endpoint}")
    assert f"[{server.endpoint}]" in result.stderr  # remote output comes back prefixed with the host
    assert not (project.root / "result").exists()  # results stay on the build host
    assert control.app_healthy(project.sim, "oneshot") is True


def test_fly_deploy_dry_run_on_an_unreachable_host_opens_no_connection(project):
    result = project.inv("deploy", "--dry-run", "--on", "root@127.0.0.1:9", "--json")
    assert result.returncode == 0, result.stderr
    plan = steps(result)
    assert plan["build"] == ("planned", "would build .#oneshot-integrated on root@127.0.0.1:9")
    assert plan["smoke"] == ("planned", "would run tests/smoke against result on root@127.0.0.1:9")
