"""The docs as a newcomer meets them: a first page of at most 8 KB pointing to one file per topic, links and
anchors that resolve, and `inv` command lines read as the doc-commands test reads them."""

from __future__ import annotations

import pytest
from helpers.docs import DOCS, README, anchors, blocks, commands, links, nox_sessions, parse, slug
from helpers.project import REPO


def test_the_readme_is_a_first_page_of_at_most_8_kb():
    assert len(README.read_bytes()) <= 8 * 1024


def test_the_readme_points_to_every_topic_in_docs():
    linked = {target.split("#")[0] for _, target in links(README)}
    topics = {f"docs/{path.name}" for path in (REPO / "docs").glob("*.md")}
    assert topics - linked == set()
    assert {"docs/safety.md", "docs/configuration.md", "docs/development.md"} <= topics


def test_every_relative_link_and_anchor_resolves():
    problems = []
    for path in DOCS:
        for line, target in links(path):
            file, _, anchor = target.partition("#")
            where = (path.parent / file).resolve() if file else path
            if not where.exists():
                problems.append(f"{path.relative_to(REPO)}:{line}: {file} does not exist")
            elif anchor and (where.suffix != ".md" or anchor not in anchors(where)):
                problems.append(
                    f"{path.relative_to(REPO)}:{line}: no heading #{anchor} in {file or path.name}"
                )
    assert problems == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Regions on Fly", "regions-on-fly"),
        ("This machine: `--target local`", "this-machine---target-local"),
        (
            "Another Linux host: `--target ssh://user@host[:port]`",
            "another-linux-host---target-sshuserhostport",
        ),
        ("`health`", "health"),
    ],
)
def test_anchors_are_githubs(heading, anchor):
    assert slug(heading) == anchor


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Measured\n\n```sh\n# not a heading\n```\n\n## Measured\n")
    assert anchors(page) == {"measured", "measured-1"}


def test_links_inside_code_are_not_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](a.md) and `[b](b.md)`\n\n```\n[c](c.md)\n```\n[web](https://example.org)\n")
    assert list(links(page)) == [(1, "a.md")]


@pytest.mark.parametrize(
    ("snippet", "parsed"),
    [
        ("inv deploy --target local", [("deploy", ("--target",))]),
        ("nix develop --command inv deploy --dry-run", [("deploy", ("--dry-run",))]),
        ("inv status --target web [--json]", [("status", ("--target", "--json"))]),
        (
            "inv cache.use --url=https://c.example.org && inv cache.push",
            [("cache.use", ("--url",)), ("cache.push", ())],
        ),
        ("inv scale --mode M iad=2,ams=1", [("scale", ("--mode",))]),
        ("inv --help TASK", [(None, ("--help",))]),
        ("inv", [(None, ())]),
        ("inv …", []),
        ("invoke deploy", []),
    ],
)
def test_inv_command_lines_are_read_as_task_and_flags(snippet, parsed):
    assert list(parse(snippet)) == parsed


def test_commands_come_from_inline_code_and_shell_blocks_only(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Run `inv build\n--fresh` or inv deploy in prose.\n\n"
        "```sh\ninv doctor   # a comment --not-a-flag\n```\n\n```yaml\ninv: ignored\n```\n"
    )
    found = [(c.task, c.flags) for c in commands([page])]
    assert found == [("build", ("--fresh",)), ("doctor", ())]
    assert [block.language for block in blocks(page)] == [None, "sh", "yaml"]


def test_nox_sessions_are_read_from_code_placeholders_and_pytest_arguments_left_out(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "`nox -s lint tests` and `nox -s tests -- tests/unit`, `nox -s NAME`\n\n```sh\nnox -s smoke\n```\n"
    )
    assert {name: len(where) for name, where in nox_sessions([page]).items()} == {
        "lint": 1,
        "tests": 2,
        "smoke": 1,
    }
