"""nixfly.errors: the one line a user reads, notes added by recovery, and typed command failures."""

from __future__ import annotations

from nixfly.errors import BUG_EXIT, INTERRUPTED_EXIT, CommandError, Interrupted, NixflyError


def test_message_notes_and_hint_make_one_line():
    error = NixflyError("deploy failed", "see the logs")
    assert str(error) == "deploy failed — see the logs" and error.exit_code == 1
    error.add_note("rolled back to v3")
    error.add_note("v3 healthy")
    assert error.notes == ["rolled back to v3", "v3 healthy"]
    assert str(error) == "deploy failed; rolled back to v3; v3 healthy — see the logs"
    assert error.message == "deploy failed"  # notes never change what failed


def test_no_hint_no_dash():
    assert str(NixflyError("plain")) == "plain" and NixflyError("plain").notes == []


def test_command_errors_carry_their_kind_and_argv():
    error = CommandError("`nix build` failed", kind="timed out", argv=["nix", "build"], returncode=None)
    assert (error.kind, error.argv, error.stderr) == ("timed out", ("nix", "build"), "")
    assert isinstance(error, NixflyError)


def test_distinct_exit_codes():
    assert Interrupted("build").exit_code == INTERRUPTED_EXIT == 130
    assert Interrupted("build").message == "interrupted during build"
    assert BUG_EXIT == 70
