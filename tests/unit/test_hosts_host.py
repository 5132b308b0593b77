"""nixfly.hosts.host: the target machine's files, scripts and health probe, here and over SSH."""

from __future__ import annotations

import stat
from pathlib import PurePosixPath

import pytest
from helpers.fakes import Call, Served, serving

from nixfly.hosts.host import Host, RemoteHost
from nixfly.probe import Expect
from nixfly.remote import Endpoint, RemoteRunner
from nixfly.runner import Completed, Runner


def test_this_machine_reads_and_writes_files_atomically(tmp_path):
    host = Host("local", Runner(), PurePosixPath(str(tmp_path)))
    path = PurePosixPath(str(tmp_path / "app" / "releases.json"))
    assert host.read_text(path) == ""
    host.write_text(path, "{}\n")
    assert host.read_text(path) == "{}\n"
    assert stat.S_IMODE((tmp_path / "app" / "releases.json").stat().st_mode) == 0o600


def test_a_dry_run_writes_nothing_and_says_so(tmp_path, capsys):
    host = Host("local", Runner(dry_run=True), PurePosixPath(str(tmp_path)))
    host.write_text(PurePosixPath(str(tmp_path / "x")), "data")
    result = host.script("create the app dir", 'mkdir -p "$@"', str(tmp_path / "d"))
    assert result.dry_run and not (tmp_path / "x").exists() and not (tmp_path / "d").exists()
    assert capsys.readouterr().err.splitlines() == [
        f"[dry-run] would write {tmp_path / 'x'}",
        "[dry-run] would create the app dir",
    ]


def test_scripts_get_their_arguments_as_words(tmp_path):
    host = Host("local", Runner(), PurePosixPath(str(tmp_path)))
    out = host.script("echo", 'printf "%s|" "$@"', "a b", "$HOME", mutates=False).stdout
    assert out == "a b|$HOME|"


def test_the_local_probe_asks_over_http():
    host = Host("local", Runner(), PurePosixPath("/"))
    with serving(Served(body={"release": "r1", "service": "web"})) as health:
        assert host.probe(health.url, 2, Expect("r1", "web")).healthy


class Remote(RemoteRunner):
    """A RemoteRunner whose transport answers from a function of the call."""

    def __init__(self, answer, *, dry_run: bool = False) -> None:
        super().__init__(Endpoint("web1", "deploy"), dry_run=dry_run)
        self.answer = answer
        self.calls: list[Call] = []

    def home(self) -> PurePosixPath:
        return PurePosixPath("/home/deploy")

    def _execute(self, argv, **kw) -> Completed:  # type: ignore[override]
        call = Call(argv, kw.get("stdin"), {}, kw.get("cwd"), None)
        self.calls.append(call)
        return self.answer(call)


def test_a_remote_base_is_under_the_login_users_home():
    host = RemoteHost("web1", Remote(lambda call: Completed(call.argv, 0)), PurePosixPath(".local/state/x"))
    assert host.base == PurePosixPath("/home/deploy/.local/state/x")


@pytest.mark.parametrize(
    ("stdout", "stderr", "healthy", "detail"),
    [
        ('{"release": "r1"}\n200', "", True, "GET http://127.0.0.1:4000/health → 200 from release r1"),
        ("oops\n503", "", False, "GET http://127.0.0.1:4000/health → 503"),
        (
            "\n000",
            "curl: (7) Failed to connect",
            False,
            "GET http://127.0.0.1:4000/health failed: curl: (7) …",
        ),
    ],
)
def test_the_remote_probe_reads_body_then_status(stdout, stderr, healthy, detail):
    remote = Remote(lambda call: Completed(call.argv, 0, stdout, stderr.replace("…", "")))
    host = RemoteHost("web1", remote, PurePosixPath("x"))
    verdict = host.probe("http://127.0.0.1:4000/health", 2, Expect("r1"))
    assert verdict.healthy is healthy and verdict.detail == detail.replace(" …", " Failed to connect")
    assert remote.calls[0].argv[-2:] == ("http://127.0.0.1:4000/health", "2")


def test_remote_files_go_through_the_connection():
    files: dict[str, str] = {}

    def answer(call: Call) -> Completed:
        if call.argv[0] == "cat":
            found = files.get(call.argv[1])
            return Completed(call.argv, 0 if found is not None else 1, found or "")
        files[call.argv[4]] = call.stdin or ""  # the WRITE script's $1 gets stdin
        return Completed(call.argv, 0)

    host = RemoteHost("web1", Remote(answer), PurePosixPath("x"))
    assert host.read_text(PurePosixPath("/srv/a.json")) == ""
    host.write_text(PurePosixPath("/srv/a.json"), "{}")
    assert host.read_text(PurePosixPath("/srv/a.json")) == "{}"


def test_a_remote_dry_run_opens_no_connection():
    remote = Remote(lambda call: pytest.fail("a dry-run ran a command"), dry_run=True)
    host = RemoteHost("web1", remote, PurePosixPath("x"))
    assert host.read_text(PurePosixPath("/srv/a.json")) == ""
    assert not host.probe("http://127.0.0.1:1/", 1).healthy
    assert not host.reads_in_dry_run and host.script("read", "cat x", mutates=False).dry_run
