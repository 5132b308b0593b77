"""nixfly.envfiles: raw-text dotenv reading (CR refused, CRLF fine), clear errors, 0600 writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nixfly import envfiles
from nixfly.errors import NixflyError

SECRET = "v3ry-s3cret-value"


def test_reads_without_interpolation(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A='$HOME-${X}'\nB=\"${A}\"\n")
    assert envfiles.read(path, secret=False) == {"A": "$HOME-${X}", "B": "${A}"}


def test_crlf_line_endings_of_a_windows_edited_file_still_read(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"# comment\r\nA=plain\r\nB='quoted'\r\n\r\nC=\"double\" # c\r\nexport D=d\r\n")
    assert envfiles.read(path, secret=False) == {"A": "plain", "B": "quoted", "C": "double", "D": "d"}


def test_a_byte_order_mark_is_not_part_of_the_first_key(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"\xef\xbb\xbfA=1\r\n")
    assert envfiles.read(path, secret=False) == {"A": "1"}


@pytest.mark.parametrize(
    "raw",
    [
        f"A=1\nKEY='{SECRET}\r\nsecond line'\n",  # a CRLF file's line ending inside a quoted multi-line value
        f"A=1\nKEY='{SECRET}\rafter'\n",  # a lone CR inside quotes
        f'A=1\nKEY="{SECRET}\\r"\n',  # python-dotenv decodes \r in double quotes
    ],
)
def test_a_carriage_return_inside_a_value_is_refused_by_key(tmp_path: Path, raw: str) -> None:
    path = tmp_path / ".env"
    path.write_bytes(raw.encode())
    with pytest.raises(NixflyError) as info:
        envfiles.read(path)
    message = str(info.value)
    assert "KEY" in message and "carriage return" in message and "dos2unix" in message
    assert SECRET not in message


def test_a_lone_carriage_return_that_would_split_a_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    # universal newlines (and python-dotenv) would read KEY=v3ry… and a second key OTHER
    path.write_bytes(f"A=1\r\nKEY={SECRET}\rOTHER=x\n".encode())
    with pytest.raises(NixflyError, match=r"line 2 \(KEY\) holds a carriage return") as info:
        envfiles.read(path)
    assert SECRET not in str(info.value)


def test_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("GOOD=1\r\nthis line is not an assignment\n")
    with pytest.raises(NixflyError, match=r"\.env: line 2 is not KEY=VALUE"):
        envfiles.read(path)


def test_unreadable_directory_and_non_utf8_files_are_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    with pytest.raises(NixflyError, match=r"nope\.env not found"):
        envfiles.read(missing)
    directory = tmp_path / "dir.env"
    directory.mkdir()
    with pytest.raises(NixflyError, match=r"dir\.env is a directory, not a file"):
        envfiles.read(directory)
    latin1 = tmp_path / "latin1.env"
    latin1.write_bytes(b"A=1\nB=caf\xe9-" + SECRET.encode() + b"\n")
    with pytest.raises(
        NixflyError, match=r"latin1\.env is not UTF-8 text \(an invalid byte on line 2\)"
    ) as info:
        envfiles.read(latin1)
    assert SECRET not in str(info.value) and "re-save it as UTF-8" in str(info.value)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.env"
        locked.write_text("A=1\n")
        locked.chmod(0)
        with pytest.raises(NixflyError, match=r"locked\.env is not readable"):
            envfiles.read(locked)


def test_unreadable_file_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "creds.json"
    path.write_text("{}")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(NixflyError) as info:
        envfiles.read_text(path, "point X at another file")
    assert str(info.value) == (
        f"{path} is not readable (permission denied) — `chmod u+r {path}`, or point X at another file"
    )


def test_write_is_atomic_0600_and_round_trips(tmp_path: Path) -> None:
    values = {"A": "tok'en\\with\"quotes", "B": '{"a":"# not a comment"}', "C": "multi\nline", "D": ""}
    path = tmp_path / ".env.fly"
    envfiles.write(path, values, "header")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert envfiles.read(path) == values
    assert not list(tmp_path.glob("*.tmp"))


def test_write_refuses_a_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "other-project.env"
    elsewhere.write_text("THEIRS=1\n")
    link = tmp_path / ".env.fly"
    link.symlink_to(elsewhere)
    with pytest.raises(NixflyError, match=r"\.env\.fly is a symlink"):
        envfiles.write(link, {"A": "1"})
    assert elsewhere.read_text() == "THEIRS=1\n" and link.is_symlink()
