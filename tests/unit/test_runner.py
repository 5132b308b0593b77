"""The one runner: argv only, redaction, dry-run, stdin, failures as one line, timeouts, retries."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest
from helpers import procs
from helpers.fakes import checkout, settings

from nixfly import runner
from nixfly.cli import handle_stop_signals
from nixfly.errors import NixflyError
from nixfly.runner import REDACT, Redactor, Runner, failure_line

PY = sys.executable


def test_runs_argv_without_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    result = Runner().run([PY, "-c", "import sys; print(sys.argv[1])", f"x; touch {marker}"])
    assert result.stdout.strip() == f"x; touch {marker}"
    assert not marker.exists()


def test_stdin_is_delivered_and_never_echoed(capsys):
    secret = "s3cr3t-value-on-stdin"
    result = Runner().run([PY, "-c", "import sys; print(len(sys.stdin.read()))"], stdin=secret)
    assert result.stdout.strip() == str(len(secret))
    assert secret not in capsys.readouterr().err


def test_dry_run_skips_mutations_but_runs_reads(tmp_path, capsys):
    target = tmp_path / "made"
    runner = Runner(dry_run=True)
    result = runner.run([PY, "-c", f"open({str(target)!r}, 'w')"])
    assert result.dry_run and not target.exists()
    assert "[dry-run] would run:" in capsys.readouterr().err
    read = runner.run([PY, "-c", "print('state')"], mutates=False)
    assert read.stdout.strip() == "state"


def test_failure_becomes_one_redacted_line():
    REDACT.add("hunter2-token")
    with pytest.raises(NixflyError) as info:
        Runner().run(
            [PY, "-c", "import sys; sys.stderr.write('noise\\nError: bad hunter2-token\\n'); sys.exit(3)"]
        )
    message = str(info.value)
    assert "exit 3" in message and "Error: bad ***" in message
    assert "hunter2-token" not in message and "\n" not in message


def test_missing_command_says_what_to_install():
    with pytest.raises(NixflyError, match="command not found"):
        Runner().run(["definitely-not-a-command-nixfly"])


def test_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    script = (
        "import os, subprocess, time; p = subprocess.Popen(['sleep', '60']); "
        f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    with pytest.raises(NixflyError, match="did not finish within"):
        Runner().run([PY, "-c", script], timeout=1.5)
    grandchild = int(pidfile.read_text())
    # stop() has returned: the whole session got TERM, then KILL; the grandchild is gone or a zombie.
    procs.wait_until(lambda: not procs.running(grandchild), 5, "the grandchild to be gone")


def test_reads_are_retried_mutations_never(tmp_path):
    counter = tmp_path / "count"
    script = (
        f"import pathlib, sys; p = pathlib.Path({str(counter)!r}); "
        "n = int(p.read_text() or 0) if p.exists() else 0; "
        "p.write_text(str(n + 1)); sys.exit(0 if n >= 1 else 1)"
    )
    runner = Runner(retry_base_seconds=0.01)
    runner.run([PY, "-c", script], mutates=False, retries=2)
    assert counter.read_text() == "2"
    with pytest.raises(ValueError):
        runner.run([PY, "-c", "pass"], retries=1)


def test_redactor_masks_each_line_of_multiline_values():
    r = Redactor()
    r.add("first-line-secret\nsecond-line-secret")
    r.add("abc")  # too short to mask safely
    out = r("a first-line-secret b second-line-secret abc")
    assert "first-line-secret" not in out and "second-line-secret" not in out and "abc" in out


def test_failure_line_prefers_error_lines():
    assert failure_line("x\nError: the cause\ntrailing") == "Error: the cause"
    assert failure_line("", "only stdout") == "only stdout"
    assert failure_line("") == "(no output)"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_right_after_the_fork_still_leaves_no_child(monkeypatch, signum):
    """The Ctrl-C (or TERM, HUP, raised as one) lands inside Popen, after the child exists: it is held until
    the child is registered, so ``stop_all`` (what every task runs on Ctrl-C) ends it."""
    children: list[subprocess.Popen[str]] = []
    popen = subprocess.Popen

    def popen_then_signal(*args, **kwargs):
        children.append(popen(*args, **kwargs))
        signal.raise_signal(signum)
        return children[-1]

    monkeypatch.setattr(runner.subprocess, "Popen", popen_then_signal)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in handlers:
        signal.signal(sig, signal.SIG_DFL)
    handle_stop_signals()
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            Runner().start(["sleep", "60"])
        assert getattr(raised.value, "signum", signal.SIGINT) == signum
        [child] = children
        assert child.poll() is None
        runner.stop_all()
        assert child.poll() == -signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for child in children:
            child.kill()
            child.wait()


def test_worker_threads_start_children_without_touching_signals():
    handler = signal.getsignal(signal.SIGINT)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(Runner().run(["true"]).returncode))
    worker.start()
    worker.join()
    assert seen == [0] and signal.getsignal(signal.SIGINT) is handler


def test_after_stop_all_no_thread_starts_a_command():
    runner.stop_all()
    with pytest.raises(NixflyError, match="`true…` was not started: stopping after an interrupt"):
        Runner().run(["true"])


def test_a_child_started_while_stop_all_runs_in_another_thread_is_stopped_too(monkeypatch):
    """stop_all took its list of children while this thread was inside Popen: the child is stopped as soon as
    it is registered, and the command ends as stopped, never as a result to act on."""
    children: list[subprocess.Popen[str]] = []
    popen = subprocess.Popen

    def popen_during_stop_all(*args, **kwargs):
        children.append(popen(*args, **kwargs))
        stopper = threading.Thread(target=runner.stop_all)
        stopper.start()
        stopper.join()
        return children[-1]

    monkeypatch.setattr(runner.subprocess, "Popen", popen_during_stop_all)
    try:
        with pytest.raises(NixflyError, match="`sleep 60…` was stopped"):
            Runner().run(["sleep", "60"])
        [child] = children
        assert child.poll() == -signal.SIGTERM
    finally:
        for child in children:
            child.kill()
            child.wait()


# --- time limits ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "remote", "key"),
    [
        (["flyctl", "checks", "list"], False, "flyctl"),
        (["/opt/fly/bin/flyctl", "deploy", "--app", "a"], False, "flyctl_deploy"),
        (["flyctl", "scale", "count", "2"], False, "flyctl_deploy"),
        (["nix", "--extra-experimental-features", "nix-command flakes", "build", ".#x"], False, "nix_build"),
        (["nix", "copy", "--to", "ssh://h", "/nix/store/x"], False, "nix_build"),
        (["nix", "path-info", "-S", "/nix/store/x"], False, "nix"),
        (["nix-env", "--profile", "p", "--set", "x"], True, "nix"),
        (["skopeo", "copy", "a", "b"], False, "skopeo"),
        (["git", "rev-parse", "HEAD"], False, "git"),
        (["sh", "-c", "script"], True, "ssh"),
        (["gh", "auth", "token"], False, "other"),
    ],
)
def test_every_command_is_bounded_by_the_key_of_its_kind(argv, remote, key):
    assert runner.limit_key(argv, remote=remote) == key
    assert key in runner.LIMITS


def test_a_command_past_its_limit_is_stopped_with_one_line_naming_the_key(monkeypatch):
    monkeypatch.setitem(runner.LIMITS, "other", 0.5)
    with pytest.raises(NixflyError) as raised:
        Runner().run(["sleep", "60"], mutates=False)
    assert raised.value.kind == "timed out"  # type: ignore[attr-defined]
    assert (
        raised.value.message
        == "`sleep 60…` did not finish within 0.5s and was stopped (nixfly.timeouts.other)"
    )
    assert raised.value.hint == "if it is only slow, raise nixfly.timeouts.other in invoke.yaml"
    assert runner.live_in_sessions(p.pid for p in runner._LIVE) == []


def test_a_deadline_bounds_every_command_inside_it_below_its_own_limit():
    with runner.deadline(0.5, "nixfly.health.timeout"), pytest.raises(NixflyError) as raised:
        Runner().run(["sleep", "60"], mutates=False, retries=3)
    assert raised.value.message == "`sleep 60…` was stopped: the 0.5s of nixfly.health.timeout ran out"
    assert raised.value.hint == "if it is only slow, raise nixfly.health.timeout in invoke.yaml"
    assert runner._DEADLINES == []


def test_an_explicit_timeout_keeps_its_own_message():
    with pytest.raises(NixflyError) as raised:
        Runner().run(["sleep", "60"], mutates=False, timeout=0.3)
    assert raised.value.message == "`sleep 60…` did not finish within 0.3s and was stopped"


def test_here_is_the_tasks_runner_in_the_checkout_following_dry_run(tmp_path):
    s = settings(checkout(tmp_path), dry_run=True)
    made = runner.here(s)
    assert type(made) is Runner and made.dry_run and made.cwd == s.root
