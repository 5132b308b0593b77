"""One run of the simulated flyctl: parsed flags, environment, state, streams, and the lookups every
command shares (app name resolution, app lookup, JSON output)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from flyctl_sim import appconfig, render
from flyctl_sim.cobra import Command, Parsed
from flyctl_sim.errors import FlyError
from flyctl_sim.state import State

# The message flyctl's RequireAppName preparer gives when -a, FLY_APP and fly.toml all lack an app name
# (chosen: the text flyctl prints, as widely quoted; the brief allowed any message of this style).
EXPLICIT_CONFIG_CHECKED_SINCE = (0, 4, 80)  # `git log -S` on command.go: #4699, first tagged in v0.4.80
MISSING_APP_NAME = (
    "the config for your app is missing an app name, add an app field to the fly.toml file or specify with "
    "the -a flag"
)


class Stdin:
    """Standard input that counts the bytes consumed (calls.jsonl records the count, never the content)."""

    def __init__(self, stream: BinaryIO | None) -> None:
        self._stream = stream
        self.consumed = 0

    def piped(self) -> bool:
        """flyctl's ``helpers.HasPipedStdin``: stdin is not a character device (a terminal, /dev/null)."""
        if self._stream is None:
            return False
        try:
            mode = os.fstat(self._stream.fileno()).st_mode
        except (OSError, ValueError):
            return False
        return not stat.S_ISCHR(mode)

    def read(self, limit: int | None = None) -> bytes:
        if self._stream is None:
            return b""
        data = self._stream.read() if limit is None else self._stream.read(limit)
        self.consumed += len(data)
        return data


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.lstrip("v").split("-")[0].split("."):
        parts.append(int(piece) if piece.isdigit() else 0)
    return tuple(parts)


class Invocation:
    """Everything a command handler sees."""

    def __init__(
        self,
        *,
        parsed: Parsed,
        prog: str,
        env: Mapping[str, str],
        cwd: Path,
        home: Path,
        state: State,
        out: TextIO,
        err: TextIO,
        stdin: Stdin,
    ) -> None:
        self.parsed = parsed
        self.prog = prog
        self.env = env
        self.cwd = cwd
        self.home = home
        self.state = state
        self.out = out
        self.err = err
        self.stdin = stdin
        self.token = ""
        self.token_app: str | None = None  # set for app-scoped deploy tokens

    @property
    def command(self) -> Command:
        return self.parsed.command

    @property
    def args(self) -> list[str]:
        return self.parsed.args

    def flag(self, name: str) -> Any:
        return self.parsed.values[name]

    def given(self, name: str) -> bool:
        return name in self.parsed.explicit

    def json_output(self) -> bool:
        return bool(self.parsed.values.get("json"))

    def version(self) -> tuple[int, ...]:
        return version_tuple(str(self.state.get("version", "0.4.87")))

    def print(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)

    def warn(self, text: str) -> None:
        self.err.write(text + "\n")

    def print_json(self, value: Any) -> None:
        self.out.write(render.json_text(value))

    def config_file(self, workdir: Path | None = None) -> Path:
        flag_value = self.parsed.values.get("config", "") or ""
        return appconfig.config_path(self.cwd, flag_value, workdir)

    def local_config(self) -> appconfig.Config:
        """fly.toml for app-name lookup (command.go ``LoadAppConfigIfPresent``): a missing ./fly.toml is no
        config, a malformed one an error; a missing ``--config`` path is an error since v0.4.80 (#4699,
        "Detect missing explicit config"), before that it was skipped like a missing ./fly.toml. A ``-c DIR``
        is read as a file first (appConfigFilePaths lists DIR before DIR/fly.toml; os.ReadFile fails with
        EISDIR, not ErrNotExist), so it is an error, not DIR/fly.toml."""
        path = self.config_file()
        flag_value = self.parsed.values.get("config", "") or ""
        if flag_value and (self.cwd / flag_value).is_dir():
            raise FlyError(f"failed loading app config from {flag_value}: read {flag_value}: is a directory")
        if not path.is_file():
            if flag_value and self.version() >= EXPLICIT_CONFIG_CHECKED_SINCE:
                raise FlyError(
                    f"config file not found at specified path: {flag_value} (also tried: "
                    f"{os.path.join(flag_value, 'fly.toml')})"
                )
            return {}
        return appconfig.load(path)

    def app_name(self, cfg: appconfig.Config | None = None) -> str:
        """``-a/--app``, then ``FLY_APP``, then ``app`` in fly.toml (``-c`` or ./fly.toml). command.go
        ``RequireAppName`` loads the config first, so a missing ``-c`` file fails even with ``-a``."""
        if cfg is None and self.parsed.values.get("config"):
            cfg = self.local_config()
        name = self.parsed.values.get("app") or self.env.get("FLY_APP", "")
        if not name:
            loaded = self.local_config() if cfg is None else cfg
            name = str(loaded.get("app", "") or "")
        if not name:
            raise FlyError(MISSING_APP_NAME)
        return name

    def app(self, name: str | None = None, *, prefix: str = "") -> dict[str, Any]:
        """The named (or resolved) app's record; ``Could not find App`` when it does not exist."""
        name = name or self.app_name()
        self.check_scope(name)
        record: dict[str, Any] | None = self.state["apps"].get(name)
        if record is None:
            raise FlyError(f'{prefix}Could not find App "{name}"')
        return record

    def check_scope(self, app: str | None) -> None:
        """App-scoped deploy tokens work on their own app only (a deploy token's ``apps list`` fails:
        simonw/datasette.io#188). The refusal is the API's, not in flyctl's source; ``unauthorized`` is the
        simulator's stand-in for its 401 text, which no public source quotes."""
        if self.token_app is not None and app != self.token_app:
            raise FlyError("unauthorized")
