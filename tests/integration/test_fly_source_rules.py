"""What real flyctl does that nixfly once got wrong, each checked against the source-faithful simulator.

- The registry password is what flyctl derives from the token (fly-go tokens/tokens.go ``Tokens.Docker()``),
  proven against a real docker-registry whose htpasswd accepts only that form.
- The release line (``FLY_EMIT_RELEASE_JSON``) is found after build output that holds ``{`` too.
- Each mode ships its own package with nixpacks (``NIXPACKS_CONFIG_FILE``, passed on by flyctl).
- With no ``--builder`` the Nix-built image ships; an image that would not run on Fly is refused first.
"""

from __future__ import annotations

import json
import platform
import subprocess
import tomllib

import pytest
from flyctl_sim import control
from flyctl_sim.commands.deploy import DEFAULT_BUILD_STDOUT
from helpers.project import REPO, built_result
from helpers.registry import running_registry

from nixfly import config, engine
from nixfly.errors import NixflyError
from nixfly.runner import here
from nixfly.target import Options

FAST = ("--skip-build", "--skip-smoke")
# A deploy token as `fly tokens create deploy` prints it, with a user token beside the macaroons: flyctl logs
# in to the registry with the macaroons alone, joined by commas, scheme dropped.
TOKEN = "FlyV1 fm2_canaryMacaroonOne,fm2_canaryMacaroonTwo,canary-oauth-user-token"
DERIVED = "fm2_canaryMacaroonOne,fm2_canaryMacaroonTwo"


def without_builder(project) -> None:
    """The project's invoke.yaml as a user has it: no builder chosen, so the default applies."""
    text = (project.root / "invoke.yaml").read_text().replace("  builder: nixpacks\n", "")
    (project.root / "invoke.yaml").write_text(text)


def use_registry(project, host: str) -> None:
    text = (project.root / "invoke.yaml").read_text()
    (project.root / "invoke.yaml").write_text(
        text.replace('registry: "127.0.0.1:9"', f'registry: "{host}"', 1)
    )


def summary(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def step(document: dict, name: str) -> dict:
    return next(s for s in document["steps"] if s["step"] == name)


def test_default_builder_pushes_with_the_password_flyctl_derives_from_a_deploy_token(project, tmp_path):
    without_builder(project)
    built_result(project)  # the image step pushes only an image holding ./result's closure
    control.add_token(project.sim, TOKEN)  # an org-wide token (creating the app needs more than a deploy one)
    with running_registry(tmp_path / "registry", user="x", password=DERIVED) as registry:
        use_registry(project, registry.host)
        result = project.inv("deploy", *FAST, "--json", env={"FLY_API_TOKEN": TOKEN})
        document = summary(result)
        assert step(document, "image")["status"] == "done"
        deploy = [c for c in project.flyctl_calls() if c.get("command") == "deploy"][-1]["argv"]
        ref = deploy[deploy.index("--image") + 1]
        assert ref.startswith(f"{registry.host}/oneshot@sha256:") and "--nixpacks" not in deploy
        for secret in ("canaryMacaroon", "canary-oauth-user-token"):
            assert secret not in result.stdout + result.stderr

        # The registry is strict: the token verbatim (what nixfly used to send) is refused by it.
        verbatim = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--creds", f"x:{TOKEN}", f"docker://{ref}"],
            capture_output=True,
            text=True,
        )
        assert verbatim.returncode != 0
        # A user token alone is what flyctl would send when there is no macaroon: refused here, clearly.
        refused = project.inv("image.push", env={"FLY_API_TOKEN": "Bearer canary-oauth-user-token"})
        assert refused.returncode == 1 and "refused the credentials" in refused.stderr
        assert "canary-oauth-user-token" not in refused.stdout + refused.stderr


def test_the_release_line_is_found_after_build_output_with_braces(project, fake_result):
    result = project.inv("deploy", *FAST, "--json")
    document = summary(result)
    detail = step(document, "deploy")["detail"]
    release = control.current_release(project.sim, "oneshot")
    assert release is not None
    assert detail.startswith(f"released v{release['version']} {release['image_ref']}"), detail
    recorded = json.loads((project.root / ".nixfly" / "deployed-oneshot.json").read_text())
    assert recorded["version"] == release["version"]
    # What makes this a test: the simulated build printed lines holding `{` before the release line.
    assert "{" in DEFAULT_BUILD_STDOUT


@pytest.mark.parametrize(
    ("mode", "app", "nixpacks", "attr", "start"),
    [
        ("integrated", "oneshot", "nixpacks.toml", ".#oneshot-integrated", "/bin/start-oneshot"),
        (
            "ai-server-only",
            "oneshot-ai-providers",
            "nixpacks-ai-server.toml",
            ".#ai-server",
            "/bin/ai-server",
        ),
    ],
)
def test_each_mode_ships_its_own_package_with_nixpacks(
    project, fake_result, mode, app, nixpacks, attr, start
):
    result = project.inv("deploy", "--mode", mode, *FAST, "--json")
    assert summary(result)["ok"] is True
    release = control.current_release(project.sim, app)
    assert release is not None
    assert control.image_build(project.sim, release["image_ref"]) == {
        "builder": "nixpacks",
        "config": nixpacks,
    }
    plan = tomllib.loads((REPO / nixpacks).read_text())
    assert any(f"build {attr} " in cmd for cmd in plan["phases"]["build"]["cmds"])
    assert plan["start"]["cmd"] == start


def test_a_mode_without_its_nixpacks_config_is_refused_before_anything_changes(project, fake_result):
    text = (project.root / "invoke.yaml").read_text()
    text = text.replace(
        "    ai-server-only:\n", "    ai-server-only:\n      nixpacks_config: nixpacks-gone.toml\n", 1
    )
    (project.root / "invoke.yaml").write_text(text)
    result = project.inv("deploy", "--mode", "ai-server-only", *FAST)
    assert result.returncode == 1
    assert "has no nixpacks config (nixpacks-gone.toml)" in result.stderr
    assert control.apps(project.sim) == []


def test_an_image_for_another_platform_is_refused_before_anything_is_built(project, fake_result, monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setenv("PATH", project.env["PATH"])
    monkeypatch.setenv("FLYCTL_SIM_HOME", project.env["FLYCTL_SIM_HOME"])
    settings = config.resolve({"builder": "image"}, project.root, mode="integrated")
    with pytest.raises(NixflyError) as refused:
        engine.deploy(settings, here(settings), "fly", Options(skip_build=True, skip_smoke=True))
    message = str(refused.value)
    assert "built for aarch64-darwin" in message and "Fly Machines run x86_64-linux" in message
    assert "--on user@x86_64-linux-host" in message and "--builder nixpacks" in message
    assert [c for c in project.commands() if c not in ("auth whoami",)] == []
    assert not (project.root / "result-image").exists()
