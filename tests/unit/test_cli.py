"""nixfly.cli: flags as checked values, and every way a task ends as one line and an exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.fakes import checkout
from invoke import Config, Context, Exit

from nixfly.cli import clean_exit, handle_stop_signals, lazy_module, seconds, settings, whole
from nixfly.errors import BUG_EXIT, INTERRUPTED_EXIT, NixflyError, Stopped


@pytest.mark.parametrize(("text", "value"), [("", 0), ("8080", 8080), (3, 3), ("0", 0)])
def test_whole_numbers(text, value):
    assert whole("port", text, low=0, high=65535) == value


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("abc", "--port 'abc' is not a whole number", "e.g. --port 1"),
        ("1.5", "--port '1.5' is not a whole number", "e.g. --port 1"),
        ("70000", "--port 70000 is out of range", "use at least 0 and at most 65535"),
        ("-1", "--port -1 is out of range", "use at least 0 and at most 65535"),
    ],
)
def test_whole_refuses_with_one_line(text, message, hint):
    with pytest.raises(NixflyError) as info:
        whole("port", text, low=0, high=65535)
    assert (info.value.message, info.value.hint) == (message, hint)


def test_whole_without_an_upper_bound():
    assert whole("to", "123456789", low=0) == 123456789
    with pytest.raises(NixflyError, match=r"use at least 1$"):
        whole("lines", "0", low=1)


@pytest.mark.parametrize(("text", "value"), [("", 15.0), ("2", 2.0), ("0.5", 0.5), (86400, 86400.0)])
def test_seconds(text, value):
    assert seconds("timeout", text, 15.0) == value


@pytest.mark.parametrize("text", ["0", "-3", "86401", "nan", "soon"])
def test_seconds_refuses(text):
    with pytest.raises(NixflyError, match="--timeout"):
        seconds("timeout", text, 15.0)


def body(raise_: BaseException | None = None):
    @clean_exit
    def deploy_now(c):
        """A task body."""
        if raise_ is not None:
            raise raise_
        return "result"

    return deploy_now


def test_clean_exit_keeps_the_task_and_its_docstring():
    task = body()
    assert task(None) == "result"
    assert task.__doc__ == "A task body." and task.__name__ == "deploy_now"


def test_a_nixfly_error_is_one_line_with_its_exit_code():
    with pytest.raises(Exit) as info:
        body(NixflyError("it broke", "do this", exit_code=3))(None)
    assert (info.value.message, info.value.code) == ("error: it broke — do this", 3)


def test_ctrl_c_is_130_with_what_to_do():
    with pytest.raises(Exit) as info:
        body(KeyboardInterrupt())(None)
    assert info.value.code == INTERRUPTED_EXIT
    assert (
        info.value.message == "error: interrupted; nothing half-written was left behind. Run the task again."
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_term_and_hup_end_as_ctrl_c_does_with_the_signals_exit_code(signum, code):
    with pytest.raises(Exit) as info:
        body(Stopped(signum))(None)
    assert info.value.code == code
    assert info.value.message.startswith("error: interrupted; ")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_handle_stop_signals_raises_stopped_and_keeps_an_ignored_signal_ignored(signum):
    previous = signal.getsignal(signum)
    try:
        signal.signal(signum, signal.SIG_DFL)
        handle_stop_signals()
        with pytest.raises(Stopped) as info:
            signal.raise_signal(signum)
        assert isinstance(info.value, KeyboardInterrupt) and info.value.signum == signum
        signal.signal(signum, signal.SIG_IGN)  # nohup, `trap '' TERM`: the user's choice stands
        handle_stop_signals()
        assert signal.getsignal(signum) == signal.SIG_IGN
    finally:
        signal.signal(signum, previous)


def test_an_exit_passes_through():
    with pytest.raises(Exit) as info:
        body(Exit("bye", 4))(None)
    assert (info.value.message, info.value.code) == ("bye", 4)


def test_a_bug_is_exit_70_with_the_traceback_in_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with pytest.raises(Exit) as info:
        body(ZeroDivisionError("oops"))(None)
    assert info.value.code == BUG_EXIT
    assert info.value.message.startswith("error: nixfly hit a bug in `inv deploy.now` (ZeroDivisionError)")
    [report] = tmp_path.glob("nixfly-crash-*.txt")
    assert "ZeroDivisionError: oops" in report.read_text()
    assert "Traceback" not in info.value.message


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package `lazypkg` whose module `body` records in `lazypkg.ran` that it was executed."""
    root = tmp_path / "lazypkg"
    root.mkdir()
    (root / "__init__.py").write_text("ran = []\n")
    (root / "body.py").write_text("import lazypkg\nlazypkg.ran.append('body')\nANSWER = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("lazypkg.body", "lazypkg"):
        sys.modules.pop(name, None)


def test_lazy_module_runs_at_the_first_attribute_access(package):
    import lazypkg

    body = lazy_module("lazypkg.body")
    assert lazypkg.ran == []
    assert lazypkg.body is body  # as `import lazypkg.body` would bind it
    assert body.ANSWER == 42
    assert lazypkg.ran == ["body"]
    assert lazy_module("lazypkg.body") is sys.modules["lazypkg.body"]
    assert lazypkg.ran == ["body"]


def test_lazy_module_refuses_a_module_that_is_not_there(package):
    with pytest.raises(ModuleNotFoundError, match=r"'lazypkg\.nothing'"):
        lazy_module("lazypkg.nothing")


def test_tasks_py_leaves_the_task_bodies_logic_unloaded():
    # Any attribute of a lazy module, even __spec__, would load it: only sys.modules is looked at.
    code = "import sys, tasks; print('nixfly.commands' in sys.modules, 'nixfly.console' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    shown = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert shown.stdout == "True False\n"


def test_settings_read_the_nixfly_config_and_invokes_dry(tmp_path):
    root = checkout(tmp_path)
    c = Context(Config(overrides={"nixfly": {"builder": "nixpacks"}, "run": {"dry": True}}))
    s = settings(c, root, mode="ai-server-only", app="")
    assert (s.builder, s.dry_run, s.mode.name, s.app) == (
        "nixpacks",
        True,
        "ai-server-only",
        "oneshot-ai-providers",
    )
    plain = settings(Context(Config()), root, dry_run=False)
    assert (plain.builder, plain.dry_run) == ("image", False)


def test_a_reader_that_closes_the_pipe_early_is_not_a_bug():
    """`inv | head -1`, made certain: stdout's reader is gone before nixfly writes a byte. nixfly ends
    quietly, as a program killed by SIGPIPE would (exit 141); no bug report."""
    from helpers.project import REPO

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        # Buffered, as stdout to a pipe usually is: the write fails at the flush, not at the first print.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        result = subprocess.run(
            [sys.executable, "-m", "invoke"],
            cwd=REPO,
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141, result.stderr
    assert b"error" not in result.stderr and b"Traceback" not in result.stderr
