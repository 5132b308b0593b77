"""nixfly.hosts.activate: where a release lives on a target, what is recorded, when nothing needs doing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import PurePosixPath

import pytest
from helpers.fakes import ScriptedRunner, checkout, settings

from nixfly import bundle
from nixfly.errors import NixflyError
from nixfly.hosts.activate import Activation, HostRelease, Layout, Records
from nixfly.hosts.host import Host
from nixfly.runner import Runner

STORE = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-oneshot-integrated"


def test_layout():
    layout = Layout(PurePosixPath("/s/local"), "oneshot")
    assert layout.profile == PurePosixPath("/s/local/oneshot/profile")
    assert layout.record == PurePosixPath("/s/local/oneshot/releases.json")
    assert layout.volumes == PurePosixPath("/s/local/volumes")
    assert layout.log == PurePosixPath("/s/local/logs/oneshot.log")
    assert layout.pidfile == PurePosixPath("/s/local/run/oneshot.pid")


def release(generation: int, **over) -> HostRelease:
    values = {
        "generation": generation,
        "store_path": STORE,
        "env": {"PORT": "4000"},
        "secret_names": ["CLAUDE_ACCESS_TOKEN"],
        "digest": "d",
        "port": 4000,
        "checks": ["/health"],
        **over,
    }
    return HostRelease(**values)


def test_records_round_trip_and_never_hold_a_secret_value():
    records = Records(
        live=release(2, healthy=True), history=[release(1, healthy=True), release(2, healthy=True)]
    )
    again = Records.parse(records.dump())
    assert again == records
    assert again.last_for(1) == release(1, healthy=True) and again.last_for(7) is None
    assert release(2).urls() == ["http://127.0.0.1:4000/health"]


@pytest.mark.parametrize("data", [None, [], {"generation": "x"}, {"store_path": "/nix/store/x"}])
def test_a_damaged_release_entry_is_left_out(data):
    assert HostRelease.from_json(data) is None


def test_an_unreadable_record_means_no_releases(capsys):
    assert Records.parse("{broken") == Records()
    assert "releases.json is unreadable" in capsys.readouterr().err
    assert Records.parse("") == Records()
    history = json.dumps({"live": None, "history": [{"generation": 1, "store_path": "x"}, 7]})
    assert [r.generation for r in Records.parse(history).history] == [1]


@pytest.fixture
def activation(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_ACCESS_TOKEN", raising=False)
    s = settings(checkout(tmp_path / "checkout"))
    (s.root / ".env.fly").write_text("CLAUDE_ACCESS_TOKEN='canary-activate-1'\n")
    (s.root / ".env.fly").chmod(0o600)
    runner = ScriptedRunner(tools=["nix-env", "setsid"])
    host = Host("local", runner, PurePosixPath(str(tmp_path / "state")))
    return Activation(s, host, Runner(cwd=s.root)), runner


def test_the_environment_is_the_toml_with_the_hosts_overrides_and_todays_secrets(activation):
    act, _ = activation
    env = act.environment()
    assert env.secret == {"CLAUDE_ACCESS_TOKEN": "canary-activate-1"}
    assert env.public["AI_PROVIDER"] == "echo"  # the mode's host_env over the toml's claude
    assert env.public["DATA_DIR"].endswith("/state/volumes/oneshot_data")
    recorded = act.environment({"A": "1"})
    assert recorded.public == {"A": "1"} and recorded.secret == env.secret


def test_the_same_release_already_running_is_left_alone(activation):
    act, runner = activation
    live = replace(act._release(3, STORE, act.environment()), healthy=True)
    act.host.write_text(act.layout.record, Records(live, [live]).dump())
    runner.on("nixfly", "pid", stdout="4242\n")
    runner.on("--list-generations", stdout="   3   2026-01-01 10:00:00   (current)\n")
    outcome = act.activate(STORE)
    assert outcome.status == "skipped"
    assert outcome.detail == "already live on local: generation 3, pid 4242 (--force restarts it)"
    assert not any("--set" in c.argv or "start" in c.argv for c in runner.calls)


def test_nothing_started_means_nothing_to_verify_or_restore(activation):
    act, runner = activation
    assert act.verify().status == "skipped"
    error = NixflyError("verify failed")
    assert act.restore(error).status == "skipped" and error.notes == []
    assert runner.calls == []


def test_a_deploys_secrets_are_used_as_handed_over_and_env_fly_is_not_read_again(activation):
    """The engine's bundle step read ``.env.fly`` once (``Candidate.secrets``): a host uses those, with no
    git checks of its own, and a restore during the same run gets them too."""
    act, _ = activation
    (act.settings.root / ".env.fly").unlink()  # read now, it would give no secrets at all
    act.secrets = {"CLAUDE_ACCESS_TOKEN": "canary-engine-read"}
    assert act.environment().secret == {"CLAUDE_ACCESS_TOKEN": "canary-engine-read"}
    assert act.environment({"A": "1"}).secret == {"CLAUDE_ACCESS_TOKEN": "canary-engine-read"}


def test_without_a_deploy_env_fly_is_read_once(activation, monkeypatch):
    act, _ = activation
    reads: list[str] = []
    real = bundle.read_env_fly
    monkeypatch.setattr(bundle, "read_env_fly", lambda *a: reads.append("read") or real(*a))
    act.environment()
    act.environment({"A": "1"})
    assert reads == ["read"] and act.secrets == {"CLAUDE_ACCESS_TOKEN": "canary-activate-1"}
