"""``fly secrets`` set/unset/list/deploy and the restart they trigger.

(The ``secrets import`` parser has its own tests: test_flyctl_sim_importfmt.py.)
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from flyctl_sim import control
from helpers.sim import APP, IMAGE, fails, ok, write_toml

TRICKY = {
    "PLAIN": "plain",
    "HASHED": "a#b c",
    "SPACES": "  padded  ",
    "UNICODE": "pässwörd ✓",
    "MULTI": "line1\nline2\n\nline4",
}
IMPORT_TEXT = (
    "# comment\r\n"
    "PLAIN=plain\r\n"
    'HASHED="a#b c"\n'
    "SPACES='  padded  '\n"
    "UNICODE=pässwörd ✓ # comment\n"
    'MULTI="""line1\nline2\n\nline4"""\n'
)


def test_secrets_lifecycle(home: Path, tmp_path: Path) -> None:
    control.create_app(home, APP)
    out = ok(home, "secrets", "import", "-a", APP, stdin=IMPORT_TEXT)
    assert out == "Secrets are staged for the first deployment\n"
    assert control.secrets(home, APP) == TRICKY
    assert set(control.secret_statuses(home, APP).values()) == {"Staged"}
    assert control.releases(home, APP) == []

    control.add_image(home, IMAGE)
    workdir = tmp_path / "app"
    write_toml(workdir, f'[build]\nimage = "{IMAGE}"\n')
    ok(home, "deploy", cwd=workdir)
    assert set(control.secret_statuses(home, APP).values()) == {"Deployed"}

    out = ok(home, "secrets", "set", "NEW=-", "-a", APP, "--stage", stdin="  from stdin \n")
    assert out.startswith("Secrets have been staged, but not set on VMs. Deploy or update machines")
    assert control.secrets(home, APP)["NEW"] == "from stdin"
    assert control.secret_statuses(home, APP)["NEW"] == "Staged"
    assert len(control.releases(home, APP)) == 1

    ok(home, "secrets", "deploy", "-a", APP)
    assert control.secret_statuses(home, APP)["NEW"] == "Deployed"
    assert len(control.releases(home, APP)) == 2

    ok(home, "secrets", "unset", "NEW", "NEVER_SET", "-a", APP)  # unknown names are fine; restarts machines
    assert "NEW" not in control.secrets(home, APP)
    assert [r["version"] for r in control.releases(home, APP)] == [1, 2, 3]
    assert control.current_release(home, APP)["version"] == 3  # type: ignore[index]


def test_secrets_errors(home: Path) -> None:
    control.create_app(home, APP)
    assert fails(home, "secrets", "import", "-a", APP, stdin="") == (
        "Error: requires at least one SECRET=VALUE pair\n"
    )
    assert fails(home, "secrets", "import", "-a", APP, stdin="OK=1\nbroken\n") == (
        "Error: Failed to parse secrets from stdin: Secrets must be provided as NAME=VALUE pairs "
        "(broken is invalid)\n"
    )
    assert "'NOEQUALS': must be in the format NAME=VALUE" in fails(
        home, "secrets", "set", "NOEQUALS", "-a", APP
    )
    assert "expects standard input but none provided" in fails(home, "secrets", "set", "K=-", "-a", APP)
    assert fails(home, "secrets", "deploy", "-a", APP) == (
        "Error: no machines available to deploy\n"
        "'fly secrets deploy' will only work if the app has been deployed and there are machines available\n"
        "\n"
        "Try 'fly deploy' first\n"
        "\n"
    )
    assert control.secrets(home, APP) == {}
    assert 'Could not find App "ghost"' in fails(home, "secrets", "list", "-a", "ghost")


@pytest.mark.parametrize(
    ("version", "keys"),
    [
        ("0.3.177", {"Name", "Digest", "CreatedAt"}),
        ("0.3.178", {"name", "digest", "updated_at", "created_at"}),
        ("0.4.5", {"name", "digest", "updated_at", "created_at"}),
        ("0.4.6", {"name", "digest", "status"}),
        ("0.4.87", {"name", "digest", "status"}),
    ],
)
def test_secrets_list_shape_per_era(home: Path, version: str, keys: set[str]) -> None:
    control.set_version(home, version)
    control.create_app(home, APP)
    ok(home, "secrets", "set", "-a", APP, "ONE=1", "--stage")
    listed = json.loads(ok(home, "secrets", "list", "-a", APP, "-j"))
    assert len(listed) == 1 and set(listed[0]) == keys
    entry = listed[0]
    digest = entry.get("digest", entry.get("Digest"))
    if version == "0.3.177":
        assert digest == hashlib.md5(b"1").hexdigest()
    else:
        assert re.fullmatch(r"[0-9a-f]{16}", digest)
    if "status" in entry:
        assert entry["status"] == "Staged"


# --- deploy -------------------------------------------------------------------------------------------------
