"""nixfly.dev: what `inv dev` starts, and its dry-run."""

from __future__ import annotations

from pathlib import Path

from helpers.fakes import ScriptedRunner

from nixfly import dev


def test_both_apps_with_their_ports_web_pointing_at_the_ai_server():
    root = Path("/repo")
    assert dev.processes(root, 4100, 3100) == [
        ("ai-server", ["bun", "run", "dev"], root / "ai-server", {"PORT": "3100"}),
        (
            "web",
            ["mix", "run", "--no-halt"],
            root / "web",
            {"PORT": "4100", "AI_SERVER_URL": "http://127.0.0.1:3100"},
        ),
    ]


def test_a_dry_run_starts_nothing(tmp_path, capsys):
    runner = ScriptedRunner(dry_run=True)
    assert dev.run(runner, tmp_path, 4000, 3000) == 0
    assert runner.calls == []
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "[dry-run] would run: bun install --frozen-lockfile",
        "[dry-run] would run in ai-server/: bun run dev  (ai-server)",
        "[dry-run] would run in web/: mix run --no-halt  (web)",
    ]


def test_node_modules_come_from_the_lockfile():
    runner = ScriptedRunner().on("install", program="bun")
    dev.install_deps(runner, Path("/repo"))
    assert runner.calls[0].argv == ("bun", "install", "--frozen-lockfile")
    assert runner.calls[0].cwd == Path("/repo/ai-server")
