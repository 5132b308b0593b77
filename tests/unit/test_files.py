"""nixfly.files: files written so that a crash or Ctrl-C never leaves half of one behind."""

from __future__ import annotations

import os
import stat

import pytest

from nixfly.errors import NixflyError
from nixfly.files import read_record, write_atomic


def test_write_atomic_keeps_old_content_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    write_atomic(target, "old")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600

    def boom(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(NixflyError, match=r"cannot write .*state\.json: disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_read_record_reads_damage_as_empty(tmp_path):
    path = tmp_path / "record.json"
    assert read_record(path) == {}
    path.write_text('{"version": 3}')
    assert read_record(path) == {"version": 3}
    for damaged in ("{broken", "[1, 2]", ""):
        path.write_text(damaged)
        assert read_record(path) == {}
