"""nixfly.remote: one command string per argv over SSH, and syncing the checkout a flake sees."""

from __future__ import annotations

import gzip
import io
import shlex
import subprocess
import tarfile
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import pytest
from helpers.fakes import Call
from helpers.project import GIT_ENV

from nixfly.closure import store_uri
from nixfly.endpoint import Endpoint
from nixfly.errors import NixflyError
from nixfly.remote import (
    FIND_NIX,
    NIX_ON_PATH_HINT,
    RemoteRunner,
    archive,
    nix_off_path,
    sync_checkout,
    tracked_files,
)
from nixfly.runner import Completed, Runner, brief_command


def test_each_argv_word_arrives_as_one_word_with_nothing_expanded():
    remote = RemoteRunner(Endpoint("web1"))
    argv = ["printf", "%s\\n", "$HOME", "a b", "'quoted'", "; rm -rf /"]
    line = remote.command_line(argv, {"PORT": "8080"}, PurePosixPath("/srv/app dir"))
    assert line.startswith("cd '/srv/app dir' && env PORT=8080 ")
    out = subprocess.run(["sh", "-c", line.split(" && ", 1)[1]], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["$HOME", "a b", "'quoted'", "; rm -rf /"]
    assert shlex.split(line.split(" && ", 1)[1])[2:] == argv


def test_env_names_are_checked_before_they_reach_a_shell():
    with pytest.raises(NixflyError, match="invalid variable name"):
        RemoteRunner(Endpoint("web1")).command_line(["true"], {"A;B": "1"}, None)


def test_a_dry_run_never_connects():
    remote = RemoteRunner(Endpoint("web1"), dry_run=True)
    assert remote.run(["uname", "-sm"], mutates=False).dry_run
    assert remote.which("nix") == "nix" and remote.home() == PurePosixPath("~")
    with pytest.raises(AssertionError, match="must not open an SSH connection"):
        remote.connection  # noqa: B018
    assert remote.where == " on web1" and remote.label == "[web1] "


def files_of(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return {m.name: tar.extractfile(m).read() if m.isfile() else b"->" + m.linkname.encode() for m in tar}  # type: ignore[union-attr]


def test_archive_is_the_same_for_the_same_files(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "b.txt").write_text("b")
    (tmp_path / "link").symlink_to("a.txt")
    data, digest = archive(tmp_path, ["dir/b.txt", "a.txt", "link", "deleted.txt"])
    assert files_of(data) == {"a.txt": b"a", "dir/b.txt": b"b", "link": b"->a.txt"}
    (tmp_path / "a.txt").touch()  # a new mtime is not new content
    assert archive(tmp_path, ["a.txt", "dir/b.txt", "link"])[1] == digest
    (tmp_path / "a.txt").write_text("changed")
    assert archive(tmp_path, ["a.txt", "dir/b.txt", "link"])[1] != digest


def git_repo(root: Path) -> None:
    env = {**GIT_ENV, "PATH": "/usr/bin:/bin", "HOME": str(root)}
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    (root / "flake.nix").write_text("{ }")
    (root / ".env").write_text("SECRET=1")
    subprocess.run(["git", "-C", str(root), "add", "flake.nix"], check=True, env=env)


def test_only_tracked_files_are_sent(tmp_path):
    git_repo(tmp_path)
    assert tracked_files(Runner(cwd=tmp_path), tmp_path) == ["flake.nix"]
    with pytest.raises(NixflyError, match="is not a git checkout"):
        tracked_files(Runner(cwd=tmp_path / "x"), tmp_path.parent)


class Remote(RemoteRunner):
    """A RemoteRunner whose transport is a dict of files: enough for sync_checkout."""

    def __init__(self) -> None:
        super().__init__(Endpoint("build"))
        self.files: dict[str, str] = {}
        self.calls: list[Call] = []
        self.uploads: list[PurePosixPath] = []

    def home(self) -> PurePosixPath:
        return PurePosixPath("/home/u")

    def _execute(self, argv, **kw) -> Completed:  # type: ignore[override]
        self.calls.append(Call(argv, kw.get("stdin"), {}, kw.get("cwd"), None))
        if argv[0] == "cat":
            found = self.files.get(argv[1])
            return Completed(argv, 0 if found is not None else 1, found or "")
        if argv[0] == "sh":  # the unpack script records the digest it unpacked
            self.files[f"{argv[4]}.sync"] = argv[6] + "\n"
        return Completed(argv, 0)

    def put(self, data: bytes, remote_path: PurePosixPath) -> None:
        self.uploads.append(remote_path)


def test_sync_uploads_once_until_the_tree_changes(tmp_path):
    root = tmp_path / "checkout"
    root.mkdir()
    git_repo(root)
    remote = Remote()
    dest = sync_checkout(remote, root, Runner())
    assert str(dest).startswith("/home/u/.cache/nixfly/checkouts/checkout-")
    assert remote.uploads == [PurePosixPath(f"{dest}.upload.tar.gz")]
    assert sync_checkout(remote, root, Runner()) == dest and len(remote.uploads) == 1
    (root / "flake.nix").write_text("{ changed }")
    sync_checkout(remote, root, Runner())
    assert len(remote.uploads) == 2


def test_a_dry_run_sync_sends_nothing(tmp_path):
    git_repo(tmp_path)
    remote = RemoteRunner(Endpoint("build"), dry_run=True)
    assert str(sync_checkout(remote, tmp_path, Runner())).startswith("~/.cache/nixfly/checkouts/")


class LocalShell(RemoteRunner):
    """A ``RemoteRunner`` whose SSH is ``sh -c`` here, with a host's PATH and HOME: what the remote login
    shell does with each command line, without sshd."""

    def __init__(self, home: Path, path: Path) -> None:
        super().__init__(Endpoint("web1"))
        self.host_home, self.host_path, self.lines = home, path, []

    def _over_ssh(self, line, argv, *, stdin, timeout, emit, hint):
        self.lines.append(line)
        host = {"PATH": str(self.host_path), "HOME": str(self.host_home)}
        done = subprocess.run(
            ["/bin/sh", "-c", line], input=stdin or "", capture_output=True, text=True, env=host
        )
        return SimpleNamespace(exited=done.returncode, stdout=done.stdout, stderr=done.stderr)


def host_with_nix_in_its_profile(tmp_path: Path, *, nix: bool = True) -> LocalShell:
    """A host whose PATH has sh but not Nix; Nix (a stand-in printing its name) in ~/.nix-profile/bin."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "sh").symlink_to("/bin/sh")
    home = tmp_path / "home dir"
    profile = home / ".nix-profile" / "bin"
    profile.mkdir(parents=True)
    for name in ("nix", "nix-env", "nix-store") if nix else ():
        (profile / name).write_text(f"#!/bin/sh\necho {name} from the profile\n")
        (profile / name).chmod(0o755)
    return LocalShell(home, tools)


def test_nix_off_the_path_is_found_once_then_on_path_for_every_command(tmp_path):
    host = host_with_nix_in_its_profile(tmp_path)
    profile = host.host_home / ".nix-profile" / "bin"
    try:
        assert host.run(["nix", "--version"], mutates=False).stdout == "nix from the profile\n"
        assert host.which("nix-env") == f"{profile}/nix-env"
        assert host.run(["nix-env", "--set", "x"]).stdout == "nix-env from the profile\n"
        prefix = f'PATH={shlex.quote(str(profile))}:"$PATH"'
        assert host.lines == [
            "nix --version",  # not found: the one time nixfly looks for it
            f"sh -c {shlex.quote(FIND_NIX)}",
            f"{prefix} nix --version",
            f"{prefix} command -v nix-env",
            f"{prefix} nix-env --set x",
        ]
        assert nix_off_path(host.endpoint) == str(profile)
        # `nix copy` runs its own ssh: the host's nix-store is named in the store URI (the space escaped).
        quoted = str(profile).replace(" ", "%20")
        assert store_uri(host.endpoint) == f"ssh://web1?remote-program={quoted}/nix-store"
    finally:
        host.close()
    assert nix_off_path(host.endpoint) is None and store_uri(host.endpoint) == "ssh://web1"


def test_a_host_without_nix_anywhere_is_looked_at_once_and_told_what_to_do(tmp_path):
    host = host_with_nix_in_its_profile(tmp_path, nix=False)
    with pytest.raises(NixflyError, match="nix: command not found on web1") as failure:
        host.run(["nix", "--version"], mutates=False)
    assert failure.value.hint == NIX_ON_PATH_HINT
    assert host.which("nix-env") is None
    assert host.lines == ["nix --version", f"sh -c {shlex.quote(FIND_NIX)}", "command -v nix-env"]


def test_other_commands_that_are_not_found_do_not_look_for_nix(tmp_path):
    host = host_with_nix_in_its_profile(tmp_path)
    with pytest.raises(NixflyError, match="setsid: command not found on web1 — install setsid there"):
        host.run(["setsid", "true"])
    assert host.which("skopeo") is None
    assert host.lines == ["setsid true", "command -v skopeo"]


SCRIPT = "set -eu\n" + "".join(f'echo "line {n}"\n' for n in range(100))


class Lost:
    """A connection whose sshd went away: every command ends in EOF (what paramiko raises then)."""

    def run(self, *args, **kwargs):
        raise EOFError()


def test_losing_sshd_mid_script_names_the_script_by_its_words_not_its_text():
    runner = RemoteRunner(Endpoint("web1"))
    runner._conn = Lost()
    with pytest.raises(NixflyError) as info:
        runner.run(["sh", "-c", SCRIPT, "nixfly", "pid", "/srv/app"], mutates=False)
    message = info.value.message
    assert message.startswith("lost the SSH connection to web1 during `sh -c <101-line script> nixfly pid…`")
    assert "echo" not in message and "\n" not in message and len(message) < 200


class Closed:
    """A connection whose server went away after the command started: paramiko gives the channel no exit
    status, which Fabric reports as exit -1, and the transport is no longer active."""

    def __init__(self, active: bool) -> None:
        self.transport = SimpleNamespace(is_active=lambda: active)

    def run(self, *args, **kwargs):
        return SimpleNamespace(exited=-1, stdout="", stderr="")


def test_a_command_cut_off_without_an_exit_status_is_a_lost_connection():
    runner = RemoteRunner(Endpoint("web1"))
    runner._conn = Closed(active=False)
    with pytest.raises(NixflyError) as info:
        runner.run(["sh", "-c", SCRIPT, "nixfly", "pid", "/srv/app"], mutates=False)
    assert info.value.message.startswith("lost the SSH connection to web1 during `sh -c <101-line script>")
    assert runner._conn is None  # the next command connects again


def test_a_command_killed_by_a_signal_on_a_live_connection_is_its_own_failure():
    runner = RemoteRunner(Endpoint("web1"))
    runner._conn = Closed(active=True)
    with pytest.raises(NixflyError) as info:
        runner.run(["nix", "build", ".#x"], mutates=False)
    assert "lost the SSH connection" not in info.value.message and "exit -1" in info.value.message


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["nix", "build", ".#x", "--out-link", "result"], "nix build '.#x'"),
        (["sh", "-c", "true", "x"], "sh -c true"),
        (["sh", "-c", SCRIPT, "nixfly-sync"], "sh -c <101-line script> nixfly-sync"),
        (["git", "x" * 300], f"git '{'x' * 159}…'"),
        (["nix-env", "--set", "/nix/store/" + "a" * 32 + "-nixfly-tiny-v1-fleet"], None),
    ],
)
def test_a_command_in_a_message_is_brief(argv, shown):
    assert brief_command(argv) == (shown or " ".join(argv))  # None: shown whole
