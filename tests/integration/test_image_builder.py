"""The Docker-free path with real parts: Nix builds the OCI image, real skopeo pushes it to a real registry on
loopback, the flyctl simulator deploys it by reference."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pytest
from flyctl_sim import control
from helpers.project import built_result, require, steps
from helpers.registry import running_registry

FAST = ("--skip-build", "--skip-smoke")


def use_registry(project, host):
    text = (project.root / "invoke.yaml").read_text()
    (project.root / "invoke.yaml").write_text(
        text.replace("nixfly:\n", f'nixfly:\n  registry: "{host}"\n', 1)
    )


def skopeo_inspect(ref, *creds):
    require("skopeo")
    args = ["skopeo", "inspect", "--tls-verify=false", *creds, f"docker://{ref}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_deploy_with_the_image_builder_pushes_once_and_deploys_that_ref(project, tmp_path):
    built_result(project)
    with running_registry(tmp_path / "registry") as registry:
        use_registry(project, registry.host)
        first = project.inv("deploy", *FAST, "--builder", "image", "--json")
        assert first.returncode == 0, first.stderr
        deploy = [c for c in project.flyctl_calls() if c.get("command") == "deploy"][-1]["argv"]
        ref = deploy[deploy.index("--image") + 1]
        assert ref.startswith(f"{registry.host}/oneshot:nix-") and "--nixpacks" not in deploy
        assert control.current_release(project.sim, "oneshot")["image_ref"].endswith(ref.split("/", 1)[1])
        info = skopeo_inspect(ref)
        assert len(info["Layers"]) >= 1
        config = subprocess.run(
            ["skopeo", "inspect", "--config", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "start-oneshot" in config
        assert steps(first)["image"] == ("done", f"pushed: {ref}")

        second = project.inv("deploy", *FAST, "--builder", "image", "--json")
        assert second.returncode == 0, second.stderr
        again = steps(second)
        assert again["image"] == ("skipped", f"already in registry: {ref} is what runs now")
        assert "skopeo copy" not in second.stderr
        assert again["deploy"] == ("skipped", "v1 is live and nothing changed (--force redeploys)")


def test_image_push_with_credentials_and_refused_credentials(project, tmp_path):
    token = control.DEFAULT_TOKEN
    with running_registry(tmp_path / "registry", user="x", password=token) as registry:
        use_registry(project, registry.host)
        pushed = project.inv("image.push")
        assert pushed.returncode == 0, pushed.stderr
        ref = pushed.stdout.strip().splitlines()[-1]
        assert token not in pushed.stdout + pushed.stderr
        assert skopeo_inspect(ref, "--creds", f"x:{token}")["Name"].endswith("/oneshot")
        again = project.inv("image.push")
        assert again.returncode == 0 and "nothing uploaded" in again.stderr

        refused = project.inv("image.push", env={"FLY_API_TOKEN": "wrong-token-123"})
        assert refused.returncode == 1
        assert "refused the credentials" in refused.stderr and "wrong-token-123" not in refused.stderr


def test_unreachable_registry_stops_before_deploying(project):
    built_result(project)
    use_registry(project, "127.0.0.1:9")
    result = project.inv("deploy", *FAST, "--builder", "image", "--json")
    assert result.returncode == 1
    assert "registry 127.0.0.1:9 is unreachable" in result.stderr
    assert steps(result)["image"] == ("failed", "registry 127.0.0.1:9 is unreachable")
    assert steps(result)["deploy"][0] == "not run"
    assert "deploy" not in project.commands()


@pytest.mark.parametrize("smoke", [True, False])
def test_skip_build_after_a_code_change_ships_nothing_untested(project, tmp_path, smoke):
    """./result was built, then the code changed and was committed. With smoke on (it tests ./result), the
    deploy stops before Fly changes: the checkout no longer builds the tested closure. With --skip-smoke,
    the image the checkout builds is refused before it is pushed: it does not hold ./result's closure."""
    tested = built_result(project)
    script = project.root / "scripts" / "start-oneshot"
    script.write_text(script.read_text() + "# a change nobody tested\n")
    subprocess.run(["git", "commit", "-qam", "change"], cwd=project.root, env=project.env, check=True)
    with running_registry(tmp_path / "registry") as registry:
        use_registry(project, registry.host)
        flags = ("--skip-build",) if smoke else FAST
        result = project.inv("deploy", *flags, "--builder", "image", "--json")
        assert result.returncode == 1, result.stderr
        ran = steps(result)
        if smoke:
            assert ran["smoke"][0] in ("done", "skipped")
            status, detail = ran["app"]
            assert status == "failed" and f"no longer builds the tested closure {tested}" in detail
            assert [c for c in project.commands() if c in ("apps create", "volumes create")] == []
        else:
            status, detail = ran["image"]
            assert status == "failed" and f"does not hold the tested closure {tested}" in detail
        assert "skopeo copy" not in result.stderr
        assert "deploy" not in project.commands()


def test_failing_image_build_stops_before_deploying(project, fake_result):
    text = (project.root / "invoke.yaml").read_text()
    text = text.replace("    integrated:\n", "    integrated:\n      image_attr: no-such-image\n", 1)
    (project.root / "invoke.yaml").write_text(text)
    result = project.inv("deploy", *FAST, "--builder", "image", "--json")
    assert result.returncode == 1
    assert "nix build .#no-such-image failed" in result.stderr
    assert steps(result)["image"] == ("failed", "nix build .#no-such-image failed (exit 1)")
    assert "deploy" not in project.commands()


def customisation_layer(archive):
    """Names and link targets in the image's top layer: what `contents` put at /."""
    with tarfile.open(archive) as image:
        manifest = json.load(image.extractfile("manifest.json"))
        top = image.extractfile(manifest[0]["Layers"][-1])
        with tarfile.open(fileobj=io.BytesIO(top.read())) as layer:
            return {m.name.removeprefix("./"): m.linkname for m in layer.getmembers()}


@pytest.mark.parametrize("mode", ["integrated", "ai-server-only"])
def test_image_inspect_shows_layers_and_command(project, mode):
    result = project.inv("image.inspect", "--mode", mode)
    assert result.returncode == 0, result.stderr
    assert "layers" in result.stderr and "Cmd" in result.stderr
    out_link = "result" if mode == "integrated" else "result-ai-server"
    top = customisation_layer(project.root / f"{out_link}-image")
    # dockerTools.binSh: without it the image has no shell (`fly ssh console`, anything that shells out).
    assert top["bin/sh"].endswith("-bin-sh/bin/sh")
