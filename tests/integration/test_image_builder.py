"""The Docker-free path with real parts: Nix builds the OCI image, real skopeo pushes it to a real registry on
loopback, the flyctl simulator deploys it by reference."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
from flyctl_sim import control
from helpers.project import built_result, require, steps
from helpers.registry import running_registry

FAST = ("--skip-build", "--skip-smoke")


def use_registry(project, host):
    text = (project.root / "invoke.yaml").read_text()
    (project.root / "invoke.yaml").write_text(
        text.replace('registry: "127.0.0.1:9"', f'registry: "{host}"', 1)
    )


def skopeo_inspect(ref, *creds):
    require("skopeo")
    args = ["skopeo", "inspect", "--tls-verify=false", *creds, f"docker://{ref}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_deploy_with_the_image_builder_pushes_once_and_deploys_that_ref(project, tmp_path):
    tested = built_result(project)
    with running_registry(tmp_path / "registry") as registry:
        use_registry(project, registry.host)
        first = project.inv("deploy", *FAST, "--builder", "image", "--json")
        assert first.returncode == 0, first.stderr
        deploy = [c for c in project.flyctl_calls() if c.get("command") == "deploy"][-1]["argv"]
        ref = deploy[deploy.index("--image") + 1]
        # By digest, never by the tag: the digest is the one the registry holds under the pushed tag.
        assert ref.startswith(f"{registry.host}/oneshot@sha256:") and "--nixpacks" not in deploy
        assert control.current_release(project.sim, "oneshot")["image_ref"].endswith(ref.split("/", 1)[1])
        info = skopeo_inspect(ref)
        assert len(info["Layers"]) >= 1 and ref.endswith("@" + info["Digest"])
        # The repository's tags: the image's nix-… and, once verified, its receipt's (in no set order).
        (pushed_tag,) = [t for t in info["RepoTags"] if t.startswith("nix-")]
        assert skopeo_inspect(f"{info['Name']}:{pushed_tag}")["Digest"] == info["Digest"]
        digests = {m["image_ref"]["digest"] for m in control.machines(project.sim, "oneshot")}
        assert digests == {info["Digest"]}
        config = subprocess.run(
            ["skopeo", "inspect", "--config", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "start-oneshot" in config
        status, detail = steps(first)["image"]
        assert status == "done" and detail == f"pushed: {ref} (tag {info['Name']}:{pushed_tag})"
        assert f"all 1 machine(s) run {info['Digest'][:19]}…" in steps(first)["verify"][1]

        # The receipt, beside the image: any checkout reads it back with `inv releases --json`.
        receipt_step = steps(first)["receipt"]
        tag = f"{registry.host}/oneshot:{info['Digest'].replace(':', '-')}.v1.nixfly"
        assert receipt_step == ("done", f"v1: {tag}")
        listed = project.inv("releases", "--json")
        assert listed.returncode == 0, listed.stderr
        (release,) = json.loads(listed.stdout)
        kept = release["receipt"]
        assert kept["release"] == 1 and kept["image"] == ref and kept["image_digest"] == info["Digest"]
        assert kept["closure"] == str(tested)
        assert kept["smoke"]["result"] == "skipped (--skip-smoke)"
        assert kept["flyctl"] == "0.4.87" and kept["regions"] == ["iad"]
        assert [m["digest"] for m in kept["machines"]] == [info["Digest"]]
        assert kept["fly_toml"] == (project.root / "fly-integrated.toml").read_text()
        assert kept["started_at"] <= kept["finished_at"] and isinstance(kept["dirty"], bool)
        artifact = json.loads(
            subprocess.run(
                ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{tag}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert artifact["artifactType"] == "application/vnd.nixfly.receipt.v1+json"
        (layer,) = artifact["layers"]
        assert (
            layer["mediaType"] == "application/vnd.cyclonedx+json" and layer["digest"] == kept["sbom_digest"]
        )
        # `inv image.inspect` says where the manifest went: the image's digest, v1's receipt and its digest.
        inspected = project.inv("image.inspect", "--json")
        assert inspected.returncode == 0, inspected.stderr
        travel = json.loads(inspected.stdout)["manifest"]
        raw = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{tag}"],
            capture_output=True,
            check=True,
        ).stdout
        assert travel == {
            "repository": f"{registry.host}/oneshot",
            "image_tag": f"{info['Name']}:{pushed_tag}",
            "image_digest": info["Digest"],
            "receipts": [{"release": 1, "ref": tag, "digest": "sha256:" + hashlib.sha256(raw).hexdigest()}],
            "next": f"{registry.host}/oneshot:{info['Digest'].replace(':', '-')}.vN.nixfly",
            "unknown": "",
        }

        second = project.inv("deploy", *FAST, "--builder", "image", "--json")
        assert second.returncode == 0, second.stderr
        again = steps(second)
        assert again["receipt"] == ("skipped", f"v1 has its receipt: {tag}")
        assert again["diff"] == ("done", "Nothing changes against v1")

        # The diff in the plan: the live release's SBOM, read from beside its image, against ./result.
        changed = tmp_path / "changed"
        (changed / "bin").mkdir(parents=True)
        (changed / "bin" / "start-oneshot").write_text("#!/bin/sh\necho v2\n")
        added = subprocess.run(
            ["nix-store", "--add", str(changed)], capture_output=True, text=True, check=True
        )
        (project.root / "result").unlink()
        (project.root / "result").symlink_to(added.stdout.strip())
        plan = project.inv("deploy", *FAST, "--builder", "image", "--dry-run", "--json")
        assert plan.returncode == 0, plan.stderr
        (diff,) = [s for s in json.loads(plan.stdout)["steps"] if s["step"] == "diff"]
        assert diff["status"] == "planned" and diff["detail"].startswith("against v1: ")
        whole = diff["table"]["data"]
        assert not whole["nothing_changes"] and whole["old_root"] == str(tested)
        assert whole["new_root"] == added.stdout.strip()
        assert again["image"] == ("skipped", f"already in registry: {ref} is what runs now")
        assert "skopeo copy" not in second.stderr
        assert again["deploy"] == ("skipped", "v1 is live and nothing changed (--force redeploys)")


def test_a_machine_on_another_digest_fails_the_release_and_it_is_rolled_back(project, tmp_path):
    built_result(project)
    with running_registry(tmp_path / "registry") as registry:
        use_registry(project, registry.host)
        first = project.inv("deploy", *FAST, "--builder", "image", "--json")
        assert first.returncode == 0, first.stderr
        pushed = control.current_release(project.sim, "oneshot")["image_ref"].rsplit("@", 1)[1]
        wrong = "sha256:" + "0" * 64
        control.drift_digest(project.sim, "oneshot", wrong)
        second = project.inv("deploy", *FAST, "--builder", "image", "--force", "--json")
        assert second.returncode == 1, second.stderr
        failed = steps(second)
        assert failed["verify"][0] == "failed"
        assert f"not every machine runs the pushed image {pushed}" in failed["verify"][1]
        assert f"runs {wrong}" in failed["verify"][1]
        assert failed["rollback"][0] == "done"
        # The previous release's own app config comes back with its image (from its receipt).
        back = [c for c in project.flyctl_calls() if c.get("command") == "deploy"][-1]["argv"]
        assert back[back.index("--config") + 1].endswith("rollback-oneshot-v1.toml")
        assert {m["image_ref"]["digest"] for m in control.machines(project.sim, "oneshot")} == {pushed}


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
    # No registry answers here (127.0.0.1:9): where the manifest would go is still shown, and why no more.
    assert "where its manifest (SBOM) and receipt travel" in result.stderr
    assert "registry 127.0.0.1:9 is unreachable" in result.stderr
    out_link = "result" if mode == "integrated" else "result-ai-server"
    top = customisation_layer(project.root / f"{out_link}-image")
    # dockerTools.binSh: without it the image has no shell (`fly ssh console`, anything that shells out).
    assert top["bin/sh"].endswith("-bin-sh/bin/sh")


def prune(registry, digest):
    """What a registry's garbage collection leaves of an image: neither its tags nor its manifest."""
    manifests = registry.data / "docker" / "registry" / "v2" / "repositories" / "oneshot" / "_manifests"
    shutil.rmtree(manifests / "revisions" / "sha256" / digest.split(":")[1])
    for tag in (manifests / "tags").glob("nix-*"):
        shutil.rmtree(tag)


def test_rollback_to_n_restores_its_config_says_which_secrets_changed_and_repushes_a_pruned_image(
    project, tmp_path
):
    built_result(project)
    with running_registry(tmp_path / "registry") as registry:
        use_registry(project, registry.host)
        first = project.inv("deploy", *FAST, "--builder", "image", "--json")
        assert first.returncode == 0, first.stderr
        toml = project.root / "fly-integrated.toml"
        toml.write_text(
            toml.read_text().replace('ONESHOT_GRACE_SECONDS = "10"', 'ONESHOT_GRACE_SECONDS = "30"')
        )
        env = project.root / ".env"
        env.write_text(env.read_text().replace("canary-claude-7f3a9c1e", "canary-claude-rotated"))
        second = project.inv("deploy", *FAST, "--builder", "image", "--json")
        assert second.returncode == 0, second.stderr
        grace = {
            m["config"]["env"]["ONESHOT_GRACE_SECONDS"] for m in control.machines(project.sim, "oneshot")
        }
        assert grace == {"30"}
        # Any checkout compares two Fly releases from the SBOMs kept beside their images: v1 and v2 run
        # one closure (only the toml and a secret changed), and the live one against the same ./result too.
        for args in (("--from", "1", "--to", "v2"), ()):
            compared = project.inv("diff", "--target", "fly", *args, "--json")
            assert compared.returncode == 0, compared.stderr
            assert json.loads(compared.stdout)["nothing_changes"] is True
        missing = project.inv("diff", "--target", "fly", "--from", "7")
        assert missing.returncode == 1
        assert "oneshot has no release v7 (releases: v2, v1)" in missing.stderr
        digest = control.current_release(project.sim, "oneshot")["image_ref"].rsplit("@", 1)[1]
        prune(registry, digest)

        back = project.inv("rollback", "--to", "1")
        assert back.returncode == 0, back.stderr
        assert "v1's app config (fly toml) comes back from its receipt" in back.stderr
        assert "secrets changed since v1 (they stay as now): CLAUDE_ACCESS_TOKEN: " in back.stderr
        assert "canary-claude" not in back.stdout + back.stderr
        assert (
            f"the registry had pruned v1's image: pushed again from its store path ({digest})" in back.stderr
        )
        machines = control.machines(project.sim, "oneshot")
        assert {m["config"]["env"]["ONESHOT_GRACE_SECONDS"] for m in machines} == {"10"}
        assert {m["image_ref"]["digest"] for m in machines} == {digest}
        assert toml.read_text().count('ONESHOT_GRACE_SECONDS = "30"') == 1  # the checkout is not touched


def test_rollback_to_a_pruned_image_whose_store_path_is_gone_rebuilds_it_from_its_derivation(
    project, tmp_path
):
    """The second half of "a rollback to a pruned image rebuilds it": the image's store path is really gone
    from the store (deleted as garbage collection would), so the rollback must build it again from the
    derivation its receipt names, and the push must give the digest v1 ran. The store is shared by every
    test, so this test ships a closure of its own (a nonce in start-oneshot): deleting its image touches
    nothing another test uses."""
    script = project.root / "scripts" / "start-oneshot"
    script.write_text(script.read_text() + f"# only {tmp_path.name} ships this: {uuid.uuid4()}\n")
    subprocess.run(
        ["git", "commit", "-qam", "a closure of its own"], cwd=project.root, env=project.env, check=True
    )
    built_result(project)
    with running_registry(tmp_path / "registry") as registry:
        use_registry(project, registry.host)
        first = project.inv("deploy", *FAST, "--builder", "image", "--json")
        assert first.returncode == 0, first.stderr
        (release,) = json.loads(project.inv("releases", "--json").stdout)
        kept = release["receipt"]
        image_path, deriver = Path(kept["image_store_path"]), kept["image_deriver"]
        assert image_path.exists() and deriver.endswith(".drv")
        second = project.inv("deploy", *FAST, "--builder", "image", "--force", "--json")
        assert second.returncode == 0, second.stderr
        digest = kept["image_digest"]
        prune(registry, digest)
        # Nothing roots the image any more (its out-link was the only root), so Nix deletes it as a GC would.
        (project.root / "result-image").unlink()
        subprocess.run(["nix-store", "--delete", str(image_path)], capture_output=True, text=True, check=True)
        assert not image_path.exists()

        back = project.inv("rollback", "--to", "1")
        assert back.returncode == 0, back.stderr
        assert f"the registry had pruned v1's image: rebuilt from {deriver} ({digest})" in back.stderr
        assert image_path.exists()
        assert skopeo_inspect(f"{registry.host}/oneshot@{digest}")["Digest"] == digest
        assert {m["image_ref"]["digest"] for m in control.machines(project.sim, "oneshot")} == {digest}


def test_a_nixpacks_release_gets_a_receipt_a_diff_and_a_whole_rollback(project, fake_result, tmp_path):
    """--builder nixpacks: Fly's builder makes the image, so the SBOM holds what the checkout pins (its lock
    files, the nixpacks config and version, the revision) and the receipt what Fly reports; both are kept
    beside the image flyctl pushed, and `inv releases`, the plan's diff and `inv rollback --to N` use them."""
    with running_registry(tmp_path / "registry") as registry:
        use_registry(project, registry.host)
        first = project.inv("deploy", *FAST, "--json")
        assert first.returncode == 0, first.stderr
        image = control.current_release(project.sim, "oneshot")["image_ref"]
        tag = f"{registry.host}/oneshot:{image.rsplit(':', 1)[1]}.v1.nixfly"
        assert image.startswith("registry.fly.io/oneshot:deployment-")
        assert steps(first)["receipt"] == ("done", f"v1: {tag}")
        listed = project.inv("releases")
        assert listed.returncode == 0, listed.stderr
        assert "smoke not run:" in listed.stderr and "nixpacks builds remotely, 1" in listed.stderr
        (release,) = json.loads(project.inv("releases", "--json").stdout)
        kept = release["receipt"]
        digests = {m["image_ref"]["digest"] for m in control.machines(project.sim, "oneshot")}
        assert kept["image"] == image and {kept["image_digest"]} == digests
        assert kept["closure"] == "" and kept["smoke"]["result"] == "smoke not run: nixpacks builds remotely"
        assert kept["flyctl"] == "0.4.87" and kept["regions"] == ["iad"]
        assert kept["fly_toml"] == (project.root / "fly-integrated.toml").read_text()
        document = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{tag}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (layer,) = json.loads(document)["layers"]
        assert layer["digest"] == kept["sbom_digest"]

        # One thing changes: an npm package bumped in the lock file. The plan names exactly that.
        lock = project.root / "ai-server" / "bun.lock"
        lock.write_text(lock.read_text().replace('"valibot@1.5.0"', '"valibot@1.6.0"'))
        toml = project.root / "fly-integrated.toml"
        toml.write_text(
            toml.read_text().replace('ONESHOT_GRACE_SECONDS = "10"', 'ONESHOT_GRACE_SECONDS = "30"')
        )
        subprocess.run(["git", "commit", "-qam", "bump"], cwd=project.root, env=project.env, check=True)
        plan = project.inv("deploy", *FAST, "--dry-run", "--json")
        assert plan.returncode == 0, plan.stderr
        (diff,) = [s for s in json.loads(plan.stdout)["steps"] if s["step"] == "diff"]
        assert diff["detail"] == "against v1: 1 npm package change(s), nixpacks build: revision changed"
        data = diff["table"]["data"]
        assert [c["name"] for c in data["build"]] == ["revision"]
        assert data["packages"] == {
            "npm": {"changed": [{"name": "valibot", "old": ["1.5.0"], "new": ["1.6.0"], "size_delta": 0}]}
        }
        assert not (data["changed"] or data["added"] or data["removed"] or data["rebuilt"])

        second = project.inv("deploy", *FAST, "--json")
        assert second.returncode == 0, second.stderr
        back = project.inv("rollback", "--to", "1")
        assert back.returncode == 0, back.stderr
        assert "v1's app config (fly toml) comes back from its receipt" in back.stderr
        machines = control.machines(project.sim, "oneshot")
        assert {m["config"]["env"]["ONESHOT_GRACE_SECONDS"] for m in machines} == {"10"}
        assert {m["config"]["image"] for m in machines} == {image}
