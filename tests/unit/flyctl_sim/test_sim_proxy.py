"""Fly Proxy in the simulator: the /health stand-in (a started machine answers with its image), autostop
above min_machines_running, autostart on a request, a stale answer on demand."""

from __future__ import annotations

import json
from pathlib import Path

from flyctl_sim import control
from helpers.sim import APP, HTTP_CHECKS, IMAGE, IMAGE2, fails, http_get, ok, write_toml

AUTOSTOP = HTTP_CHECKS.replace(
    "internal_port = 8080", 'internal_port = 8080\nauto_stop_machines = "stop"\nmin_machines_running = 1'
)


def test_health_server_answers_from_a_started_machine(home: Path, deployed: Path) -> None:
    with control.start_health_server(home) as server:
        assert server.url_template.endswith("/{app}/health")
        assert http_get(server.url("ghost"))[0] == 404
        assert http_get(server.url(APP)) == (
            200,
            json.dumps({"status": "ok", "release": IMAGE}, separators=(",", ":")),
        )
        control.create_app(home, "fresh")
        code, body = http_get(server.url("fresh"))  # nothing deployed: no machine to route to
        assert code == 503 and "release" not in json.loads(body)
        control.add_image(home, IMAGE2)
        control.set_health_plan(home, APP, ["fail"])
        fails(home, "deploy", "-i", IMAGE2, cwd=deployed)
        # rolling stopped after the first machine: the proxy prefers the machine still passing (old image)
        assert json.loads(http_get(server.url(APP))[1]) == {"status": "ok", "release": IMAGE}
        ok(home, "deploy", "-i", IMAGE2, "--strategy", "immediate", cwd=deployed)
        control.set_health_plan(home, APP, ["fail"])
        ok(home, "deploy", "-i", IMAGE2, "--strategy", "immediate", cwd=deployed)
        assert http_get(server.url(APP)) == (503, f'{{"status":"unhealthy","release":"{IMAGE2}"}}')
        assert control.app_healthy(home, APP) is False
        ok(home, "deploy", "-i", IMAGE2, cwd=deployed)
        assert json.loads(http_get(server.url(APP))[1])["release"] == IMAGE2
        # a stale machine answering (old image): the client must notice the release
        control.serve_stale(home, APP, IMAGE)
        assert json.loads(http_get(server.url(APP))[1]) == {"status": "ok", "release": IMAGE}
        control.serve_stale(home, APP, None)
        assert json.loads(http_get(server.url(APP))[1])["release"] == IMAGE2


def test_autostop_and_autostart(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n{AUTOSTOP}')
    control.set_autostop(home, APP)
    ok(home, "deploy", cwd=workdir)
    # two machines in the primary region, min_machines_running = 1: one is stopped
    assert sorted(control.machine_states(home, APP).values()) == ["started", "stopped"]
    # counts are per region list: "1 in ams" adds one there and leaves ord's two alone
    ok(home, "scale", "count", "1", "--region", "ams", "-a", APP, "-y")
    states = sorted((m["region"], m["state"]) for m in control.machines(home, APP))
    assert states == [("ams", "stopped"), ("ord", "started"), ("ord", "stopped")]  # zero outside the primary
    checks = json.loads(ok(home, "checks", "list", "-a", APP, "-j"))
    assert len(checks) == 3  # stopped machines are listed too
    # stopped machines stay stopped through a deploy; the proxy idles the app again afterwards
    ok(home, "deploy", cwd=workdir)
    assert list(control.machine_states(home, APP).values()).count("started") == 1
    # with min_machines_running = 0 everything stops; a request starts one (auto_start_machines)
    write_toml(
        workdir,
        "[build]\nimage = "
        f'"{IMAGE}"\n{AUTOSTOP.replace("min_machines_running = 1", "min_machines_running = 0")}',
    )
    control.set_autostop(home, APP, False)
    ok(home, "deploy", cwd=workdir)
    stopped = control.idle(home, APP)
    assert set(control.machine_states(home, APP).values()) == {"stopped"} and stopped
    assert control.app_healthy(home, APP) is True  # predicts the autostart without doing it
    assert set(control.machine_states(home, APP).values()) == {"stopped"}
    with control.start_health_server(home) as server:
        assert http_get(server.url(APP))[0] == 200
    assert list(control.machine_states(home, APP).values()).count("started") == 1


def test_suspend_and_crashed_machines_are_not_idle_ones(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    body = AUTOSTOP.replace('"stop"', '"suspend"').replace(
        "min_machines_running = 1", "min_machines_running = 0"
    )
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n{body}')
    out = ok(home, "deploy", cwd=workdir)
    assert "'auto_stop_machines = \"suspend\"' that will be suspended when idling" in out
    control.idle(home, APP)
    assert set(control.machine_states(home, APP).values()) == {"suspended"}
    machines = control.machines(home, APP)
    control.crash_machines(home, APP, [m["id"] for m in machines])  # crashed for good: stopped, critical
    assert set(control.machine_states(home, APP).values()) == {"stopped"}
    with control.start_health_server(home) as server:
        code, body = http_get(server.url(APP))
    assert code == 503 and "release" not in json.loads(body)  # the proxy cannot start a crashing app
    checks = json.loads(ok(home, "checks", "list", "-a", APP, "-j"))
    assert {c["status"] for cs in checks.values() for c in cs} == {"critical"}
