"""docs/configuration.md: every setting documented, and the committed file what the generator makes."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.project import REPO

from nixfly import config, docsgen

SOURCE = Path(config.__file__).read_text(encoding="utf-8")


def documented() -> dict[str, str]:
    return {key.path: key.doc for key in docsgen.keys(SOURCE, config.DEFAULTS)}


def test_every_setting_of_defaults_has_documentation():
    assert docsgen.undocumented(docsgen.keys(SOURCE, config.DEFAULTS)) == []


def test_every_setting_config_accepts_is_in_the_reference():
    """A key the validators accept but DEFAULTS lacks (regions) is documented too."""
    accepted = {
        *config.TOP_KEYS,
        *(f"health.{k}" for k in config.HEALTH_KEYS),
        *(f"modes.<mode>.{k}" for k in config.MODE_KEYS),
    }
    assert accepted - set(documented()) == set()


def test_the_committed_reference_is_what_the_generator_makes(capsys):
    # On failure: python -m nixfly.docsgen, then commit docs/configuration.md.
    assert docsgen.generate(REPO, check=True) == 0, capsys.readouterr().err


def test_the_command_line_checks_the_committed_reference():
    assert docsgen.main(["--check"]) == 0


def test_a_stale_reference_is_one_error_line_saying_how_to_regenerate(tmp_path, capsys):
    assert docsgen.generate(tmp_path, check=True) == 1
    assert "regenerate it with `python -m nixfly.docsgen`" in capsys.readouterr().err
    assert docsgen.generate(tmp_path) == 0
    assert (tmp_path / "docs" / "configuration.md").read_text() == (
        REPO / "docs" / "configuration.md"
    ).read_text()
    assert docsgen.generate(tmp_path, check=True) == 0


SAMPLE = """
DEFAULTS: dict = {
    # The first line of a key's documentation,
    # and its second.
    "documented": 1,
    "trailing": "x",  # documented at the end of its line
    # a comment cut off by a blank line documents nothing

    "bare": "",
    # A section.
    "section": {
        "inner": [1, 2],  # A nested key.
    },
    # Named groups: their keys are data.
    "groups": {"web": ["ssh://a"]},
    "modes": {
        "one": {
            # Said once, for every mode.
            "app": "a",
        },
        "two": {"app": "b"},
    },
}
"""


def sample_keys() -> list[docsgen.Key]:
    namespace: dict = {}
    exec(SAMPLE, namespace)
    return docsgen.keys(SAMPLE, namespace["DEFAULTS"])


def test_comments_above_a_key_or_at_its_end_are_its_documentation():
    docs = {key.path: key.doc for key in sample_keys()}
    assert docs["documented"] == "The first line of a key's documentation, and its second."
    assert docs["trailing"] == "documented at the end of its line"
    assert docs["section.inner"] == "A nested key."
    assert docs["modes.<mode>.app"] == "Said once, for every mode."
    assert "targets.web" not in docs  # a group's name is data, not a setting


def test_a_key_without_a_comment_is_reported_by_its_dotted_path():
    assert docsgen.undocumented(sample_keys()) == ["bare", "modes"]


def test_a_mode_key_shows_each_modes_default_when_they_differ():
    found = {key.path: key for key in sample_keys()}
    assert docsgen._default(found["modes.<mode>.app"]) == "one: `a`<br>two: `b`"
    assert docsgen._default(found["section.inner"]) == "`[1, 2]`"
    assert found["section"].section and not found["groups"].section


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("", '""'),
        ("oneshot", "oneshot"),
        ("https://{app}.fly.dev/health", '"https://{app}.fly.dev/health"'),
        (["A", "B"], "[A, B]"),
        ({"AI_PROVIDER": "echo"}, "{AI_PROVIDER: echo}"),
        (True, "true"),
        (120, "120"),
    ],
)
def test_defaults_are_shown_as_invoke_yaml_would_spell_them(value, shown):
    assert docsgen._yaml(value) == shown


def test_the_reference_is_grouped_by_section_with_a_table_each():
    text = docsgen.render(SOURCE, config.DEFAULTS)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Top-level settings"
    assert {"## `health`", "## `modes`"} <= set(headings)
    assert "| `modes.<mode>.regions` | `{}` |" in text
    assert "| `health.timeout` | `120` |" in text
