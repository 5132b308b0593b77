"""Running nixfly's commands on another Linux host over SSH, with Fabric.

``RemoteRunner`` is a ``Runner`` whose transport is SSH: ``run`` (echo, dry-run, retries, errors) is the
base class's, so code written against a runner (``Nix``, the host activation) runs remotely unchanged.
SSH options come from the user's ssh config (``~/.ssh/config``; ``NIXFLY_SSH_CONFIG`` or Fabric's
``ssh_config_path`` name another file). Dry-run opens no connection at all: every command, reads included,
is only printed. Fabric is imported lazily: it costs ~0.3 s and ``inv --list`` must stay fast.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import shlex
import socket
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from nixfly import console
from nixfly.config import validate_env_name
from nixfly.endpoint import Endpoint
from nixfly.errors import CommandError, NixflyError
from nixfly.runner import REDACT, Completed, Runner, brief_command

if TYPE_CHECKING:
    from fabric import Connection

CONNECT_TIMEOUT = 15
# Where Nix installs put their commands, for a host whose non-interactive sessions do not have them on PATH:
# `ssh host cmd` reads neither ~/.profile (where a single-user install adds Nix) nor the end of
# /etc/bash.bashrc, below its "not interactive: return" line (where the multi-user installer adds it).
# Single-user, multi-user, NixOS; the first holding nix-store wins.
NIX_DIRS = ('"$HOME/.nix-profile/bin"', "/nix/var/nix/profiles/default/bin", "/run/current-system/sw/bin")
FIND_NIX = f'for d in {" ".join(NIX_DIRS)}; do if [ -x "$d/nix-store" ]; then echo "$d"; exit 0; fi; done'
NIX_ON_PATH_HINT = (
    "install Nix there: nixfly looked on the PATH of SSH commands and where installers put it "
    "(~/.nix-profile/bin, /nix/var/nix/profiles/default/bin, /run/current-system/sw/bin); if it is "
    "elsewhere, make `ssh HOST nix --version` work (PATH at the top of ~/.bashrc there)"
)

# Hosts whose Nix an open RemoteRunner found off the session's PATH, and where: `nix copy` reaches those
# hosts through its own ssh and must be told where nix-store is (closure.copy reads this).
_NIX_OFF_PATH: dict[Endpoint, str] = {}


def nix_off_path(endpoint: Endpoint) -> str | None:
    """The directory of the host's Nix commands when its sessions' PATH lacks them (else None), as found by
    an open connection to it."""
    return _NIX_OFF_PATH.get(endpoint)


def ssh_config_path() -> str | None:
    """An explicit ssh config file (tests, CI), else None: Fabric reads ~/.ssh/config and the system's."""
    return os.environ.get("NIXFLY_SSH_CONFIG") or None


def connect(endpoint: Endpoint, *, timeout: float = CONNECT_TIMEOUT) -> Connection:
    """An open Fabric connection, or a ``NixflyError`` saying whether the host, key or host key failed."""
    import paramiko
    from fabric import Config, Connection

    where = str(endpoint)
    # paramiko's transport thread logs what went wrong (tracebacks included) before the caller hears of it;
    # with no handler configured Python prints that on stderr. The error below says it in one line.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    logging.getLogger("paramiko").propagate = False
    try:
        config = Config(
            runtime_ssh_path=ssh_config_path(), overrides={"runners": {"remote": _remote_runner()}}
        )
    except FileNotFoundError as exc:
        raise NixflyError(f"ssh config {exc.filename} not found", "fix NIXFLY_SSH_CONFIG") from None
    conn = Connection(
        endpoint.host,
        user=endpoint.user or None,
        port=endpoint.port,
        config=config,
        connect_timeout=int(timeout),
    )
    _check_host_keys(conn)
    try:
        conn.open()
    except paramiko.BadHostKeyException:
        raise NixflyError(
            f"the host key of {where} does not match known_hosts",
            "if the host was reinstalled, remove its old key: ssh-keygen -R HOST; otherwise do not connect",
        ) from None
    except paramiko.AuthenticationException:
        raise NixflyError(
            f"{where} refused authentication as {conn.user}",
            "check the key: `ssh -v` the same host, or set IdentityFile for it in ~/.ssh/config",
        ) from None
    except paramiko.SSHException as exc:
        # transport.py _check_banner: the peer sent no SSH greeting, or something else.
        if "protocol banner" in str(exc) or "Indecipherable protocol version" in str(exc):
            raise NixflyError(
                f"{conn.host} port {conn.port} does not answer as an SSH server (no SSH greeting)",
                "check the port: sshd listens on 22 unless its config says otherwise (ssh://user@host:PORT)",
            ) from None
        if "authentication" in str(exc).lower():
            raise NixflyError(
                f"no SSH key or agent to log in to {where} as {conn.user}",
                "add an IdentityFile for the host in ~/.ssh/config or start ssh-agent",
            ) from None
        raise NixflyError(f"SSH to {where} failed: {exc}", "try `ssh -v` to the same host") from None
    except OSError as exc:  # refused, unreachable, unknown name, timed out
        raise NixflyError(
            f"cannot reach {where} (port {conn.port}): {_reason(exc)}",
            "check the host name and port, that sshd runs there and no firewall is in the way",
        ) from None
    return conn


@cache
def _remote_runner() -> type:
    """Fabric's runner, reading our stdin in whole chunks.

    Invoke feeds a stdin that is not a terminal to the remote command one byte per 10 ms (made for mirroring
    a keyboard): 24 s for a 2 KiB payload. Ours is always a complete string in memory.
    """
    from fabric.runners import Remote

    class ChunkedStdin(Remote):
        def read_our_stdin(self, input_: Any) -> str:
            return str(input_.read(self.read_chunk_size))

    return ChunkedStdin


def _check_host_keys(conn: Connection) -> None:
    """Fabric trusts any host key; check the ones known_hosts has, and refuse unknown ones if ssh would."""
    import paramiko

    known = str(conn.ssh_config.get("userknownhostsfile", "~/.ssh/known_hosts"))
    for name in known.split():
        path = os.path.expanduser(name)
        if path != os.devnull and os.path.isfile(path):
            conn.client.load_system_host_keys(path)
    if str(conn.ssh_config.get("stricthostkeychecking", "")).lower() == "yes":
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())


def _reason(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)  # paramiko's NoValidConnectionsError: one error per address
    if errors:
        exc = next(iter(errors.values()))
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class _Lines:
    """A file-like sink for Invoke's output threads that hands on whole lines."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._partial = ""

    def write(self, data: str) -> int:
        self._partial += data
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._emit(line)
        return len(data)

    def flush(self) -> None:
        """Invoke flushes after every chunk; a partial line waits for its end (or for ``close``)."""

    def close(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = ""


def _not_found(result: Any) -> bool:
    """The remote shell's "command not found": POSIX reserves exit 127 for it."""
    return bool(result.exited == 127 and not result.stdout.strip())


class RemoteRunner(Runner):
    """``Runner`` on ``endpoint``, over one SSH connection opened on first use: only the transport differs.

    A dry-run opens no connection: every command, reads included, is only printed.
    """

    reads_in_dry_run = False

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        dry_run: bool = False,
        env: Mapping[str, str] | None = None,
        label: str = "",
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        super().__init__(dry_run=dry_run, env=dict(env or {}), label=label or f"[{endpoint}] ")
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self._conn: Any = None
        self._home = ""
        self._looked_for_nix = False
        # Where this connection found Nix off the session's PATH: put on PATH for every command after.
        self._nix_dir = ""

    @property
    def where(self) -> str:
        return f" on {self.endpoint}"

    @property
    def connection(self) -> Connection:
        if self.dry_run:
            raise AssertionError("a dry-run must not open an SSH connection")
        if self._conn is None:
            self._conn = connect(self.endpoint, timeout=self.connect_timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._nix_dir and _NIX_OFF_PATH.get(self.endpoint) == self._nix_dir:
            del _NIX_OFF_PATH[self.endpoint]

    def which(self, name: str) -> str | None:
        """Where ``name`` is on the host's PATH (Nix's commands also where Nix installs them), or None; a
        dry-run assumes it is there."""
        if self.dry_run:
            return name
        try:
            result = self.run(["command", "-v", name], mutates=False, check=False, quiet=True)
            found = result.stdout.strip().splitlines()
            if result.returncode == 0 and found:
                return found[0]
        except CommandError as exc:
            # dash (/bin/sh on Debian, and `useradd`'s default login shell there) exits 127 for a command
            # it does not know, which reads as "`command` not found".
            if exc.kind != "not found":
                raise
        if name.startswith("nix") and self._find_nix():
            return self.which(name)
        return None

    def _find_nix(self) -> bool:
        """Look once for Nix where its installers put it; when found, it is on PATH for every later command
        (True). Only after a nix command was not found: a host with Nix on PATH pays nothing."""
        if self._looked_for_nix:
            return False
        self._looked_for_nix = True
        try:
            found = self.run(["sh", "-c", FIND_NIX], mutates=False, check=False, quiet=True).stdout.strip()
        except CommandError as exc:
            if exc.kind != "not found":  # no sh on PATH: nothing to look with
                raise
            return False
        if not found.startswith("/"):
            return False
        self._nix_dir = _NIX_OFF_PATH[self.endpoint] = found
        console.note(f"{self.label}nix is not on the PATH of SSH commands here; using {found}")
        return True

    def home(self) -> PurePosixPath:
        """The remote user's home directory (``~`` in a dry-run, which opens no connection)."""
        if self.dry_run:
            return PurePosixPath("~")
        if not self._home:
            self._home = self.run(["printenv", "HOME"], mutates=False, quiet=True).stdout.strip()
        return PurePosixPath(self._home)

    def command_line(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: Path | PurePosixPath | None
    ) -> str:
        # SSH carries one command string, which the remote login shell parses: there is no argv over SSH.
        # shlex.join quotes every word for a POSIX shell, so each argv element arrives as exactly one word,
        # with nothing expanded, whatever it contains. Env values ride here too: never put secrets in env.
        words = []
        if cwd is not None:
            words.append(f"cd {shlex.quote(str(cwd))} &&")
        if self._nix_dir:
            # An assignment before the command: the remote shell expands "$PATH" (its own) there.
            words.append(f'PATH={shlex.quote(self._nix_dir)}:"$PATH"')
        if env:
            words.append(shlex.join(["env", *(f"{validate_env_name(k)}={v}" for k, v in env.items())]))
        words.append(shlex.join(argv))
        return " ".join(words)

    def _execute(
        self,
        argv: tuple[str, ...],
        *,
        stdin: str | None,
        timeout: float | None,
        env: Mapping[str, str] | None,
        cwd: Path | PurePosixPath | None,
        stream: Callable[[str], None] | None,
        quiet: bool,
        hint: str | None,
    ) -> Completed:
        """One command over the connection. Output lines are prefixed with the host and, unless ``quiet``,
        shown as they arrive (or handed to ``stream``): remote builds are long and otherwise silent."""

        def emit(line: str) -> None:
            line = f"{self.label}{REDACT(line)}"
            if stream is not None:
                stream(line)
            elif not quiet:
                console.note(line)

        def over_ssh() -> Any:
            # The command line is made each time: after _find_nix it puts Nix on PATH.
            line = self.command_line(argv, {**self.env, **(env or {})}, cwd)
            return self._over_ssh(line, argv, stdin=stdin, timeout=timeout, emit=emit, hint=hint)

        started = time.monotonic()
        result = over_ssh()
        if _not_found(result) and argv[0].startswith("nix") and self._find_nix():
            # The command never ran (its shell did not find it): running it now cannot do anything twice.
            result = over_ssh()
        if _not_found(result):
            raise CommandError(
                f"{argv[0]}: command not found on {self.endpoint}",
                hint or (NIX_ON_PATH_HINT if argv[0].startswith("nix") else f"install {argv[0]} there"),
                kind="not found",
                argv=argv,
                returncode=127,
                stderr=result.stderr,
            )
        return Completed(argv, result.exited, result.stdout, result.stderr, time.monotonic() - started)

    def _over_ssh(
        self,
        command: str,
        argv: tuple[str, ...],
        *,
        stdin: str | None,
        timeout: float | None,
        emit: Callable[[str], None],
        hint: str | None,
    ) -> Any:
        """Fabric's result of ``command`` (the line for ``argv``) over the connection, or the error for a
        lost connection."""
        import paramiko
        from invoke.exceptions import CommandTimedOut

        out, err = _Lines(emit), _Lines(emit)
        try:
            result = self.connection.run(
                command,
                hide=False,
                warn=True,
                pty=False,
                echo=False,
                echo_stdin=False,
                # False: never forward our own stdin (a terminal or pytest's) to the remote command.
                in_stream=io.StringIO(stdin) if stdin is not None else False,
                out_stream=out,
                err_stream=err,
                timeout=timeout,
            )
        except CommandTimedOut:
            raise CommandError(
                f"`{brief_command(argv)}…` did not finish within {timeout:g}s on {self.endpoint}",
                hint,
                kind="timed out",
                argv=argv,
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self._lost(argv, _reason(exc)) from None
        finally:
            out.close()
            err.close()
        transport = self.connection.transport
        if result.exited == -1 and not (transport is not None and transport.is_active()):
            # paramiko's recv_exit_status is -1 when the channel closed without an exit status (a command
            # killed by a signal gives none either, but then the connection is still up): the server, or
            # the network, went away mid-command.
            raise self._lost(argv, "the connection closed before the command's exit status came")
        return result

    def _lost(self, argv: tuple[str, ...], reason: str) -> NixflyError:
        self._conn = None
        return NixflyError(
            f"lost the SSH connection to {self.endpoint} during `{brief_command(argv)}…`: {reason}",
            "check the network and the host, then run the same command again",
        )

    def put(self, data: bytes, remote_path: PurePosixPath) -> None:
        """Upload ``data`` to ``remote_path`` (SFTP); a dry-run only says so."""
        if self.dry_run:
            console.say(f"{self.label}[dry-run] would upload {len(data)} bytes to {remote_path}")
            return
        self.connection.put(io.BytesIO(data), str(remote_path))


# The checkout goes to a staging dir first and replaces the old one only when complete; out-links of
# earlier builds (result*, GC roots) move across so their closures stay alive.
UNPACK = """set -eu
dir=$1 archive=$2 digest=$3
rm -rf "$dir.next" "$dir.old"
mkdir -p "$dir.next"
tar -xzf "$archive" -C "$dir.next"
rm -f "$archive"
if [ -d "$dir" ]; then
  for link in "$dir"/result*; do
    if [ -L "$link" ]; then mv "$link" "$dir.next/"; fi
  done
  mv "$dir" "$dir.old"
fi
mv "$dir.next" "$dir"
rm -rf "$dir.old"
printf '%s\\n' "$digest" > "$dir.sync"
"""


def checkout_dir(remote: RemoteRunner, root: Path) -> PurePosixPath:
    """``~/.cache/nixfly/checkouts/<name>-<hash>``: one per local checkout (and machine) on each host."""
    tag = hashlib.sha256(f"{socket.gethostname()}:{root.resolve()}".encode()).hexdigest()[:12]
    return remote.home() / ".cache" / "nixfly" / "checkouts" / f"{root.name}-{tag}"


def archive(root: Path, names: Sequence[str]) -> tuple[bytes, str]:
    """A gzipped tar of ``names`` under ``root`` and a digest of its content (same files → same digest)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(names):
            path = root / name
            if not (path.is_file() or path.is_symlink()):
                continue  # tracked but deleted in the working tree: the flake does not see it either
            info = tar.gettarinfo(str(path), arcname=name)
            # Owner and time are not content: leave them out so an unchanged tree gives the same digest.
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isfile():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    data = raw.getvalue()
    return gzip.compress(data, mtime=0), hashlib.sha256(data).hexdigest()


def tracked_files(runner: Runner, root: Path) -> list[str]:
    """What a flake in a git checkout sees: the tracked files, with their working-tree content."""
    result = runner.run(
        ["git", "ls-files", "-z", "--cached"], mutates=False, check=False, quiet=True, cwd=root
    )
    if result.returncode != 0:
        raise NixflyError(
            f"{root} is not a git checkout", "--on sends the files git tracks: `git init`, `git add`"
        )
    return sorted(set(filter(None, result.stdout.split("\0"))))


def sync_checkout(remote: RemoteRunner, root: Path, local: Runner) -> PurePosixPath:
    """Copy the checkout to the host: the files git tracks, as in the working tree (uncommitted changes too).

    Exactly what the flake sees here, and nothing untracked: a stray .env never leaves this machine.
    Returns the remote checkout directory; an unchanged tree is not uploaded again.
    """
    names = tracked_files(local, root)
    data, digest = archive(root, names)
    dest = checkout_dir(remote, root)
    if remote.dry_run:
        console.say(f"{remote.label}[dry-run] would sync {len(names)} files to {dest}")
        return dest
    synced = remote.run(["cat", f"{dest}.sync"], mutates=False, check=False, quiet=True)
    if synced.returncode == 0 and synced.stdout.strip() == digest:
        console.note(f"{remote.label}checkout {dest} is up to date")
        return dest
    upload = PurePosixPath(f"{dest}.upload.tar.gz")
    remote.run(["mkdir", "-p", str(dest.parent)], quiet=True)
    remote.put(data, upload)
    remote.run(["sh", "-c", UNPACK, "nixfly-sync", str(dest), str(upload), digest], quiet=True)
    console.note(f"{remote.label}synced {len(names)} files ({len(data) // 1024} KiB) to {dest}")
    return dest
