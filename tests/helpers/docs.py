"""Reading the Markdown docs as their tests need it: headings and their GitHub anchors, relative links, and
the `inv …` command lines in code (inline spans and shell blocks)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from helpers.project import REPO

README = REPO / "README.md"
# Every Markdown file a reader of this repository is pointed to.
DOCS = [README, REPO / "DEPLOYMENT_OPTIONS.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
# The docs whose commands must work today (the changelog may name what no longer exists).
CURRENT = [path for path in DOCS if path.name != "CHANGELOG.md"]

FENCE = re.compile(r"^\s*(```|~~~)\s*([\w-]*)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
SHELL = {"", "sh", "bash", "shell", "console"}


@dataclass(frozen=True)
class Block:
    """A run of lines of one file: a paragraph of prose, or a fenced code block (``language`` set)."""

    path: Path
    line: int  # of its first line, from 1
    text: str
    language: str | None = None


def blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    start, chunk, fence = 0, [], None
    for number, line in enumerate(lines, 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            if chunk:
                yield Block(path, start, "\n".join(chunk))
            start, chunk, fence = number + 1, [], opening.group(2)
        elif fence is not None and opening:
            yield Block(path, start, "\n".join(chunk), fence)
            start, chunk, fence = number + 1, [], None
        elif fence is None and not line.strip():
            if chunk:
                yield Block(path, start, "\n".join(chunk))
            chunk = []
        else:
            if not chunk:
                start = number
            chunk.append(line)
    if chunk:
        yield Block(path, start, "\n".join(chunk), fence)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped (hyphens kept), spaces → hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for block in blocks(path):
        if block.language is not None:
            continue
        for line in block.text.splitlines():
            heading = re.match(r"#{1,6}\s+(.*)", line)
            if heading:
                name, n = slug(heading.group(1)), 1
                while name in found:  # GitHub numbers repeated headings: name, name-1, name-2
                    name, n = f"{slug(heading.group(1))}-{n}", n + 1
                found.add(name)
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of every link outside code, external ones left out."""
    for block in blocks(path):
        if block.language is not None:
            continue
        for offset, line in enumerate(block.text.splitlines()):
            for target in LINK.findall(SPAN.sub("", line)):
                if not re.match(r"[a-z]+:", target):
                    yield block.line + offset, target


@dataclass(frozen=True)
class Command:
    """An `inv` command line in the docs: its task (None: Invoke's own options) and the flags it passes."""

    where: str
    task: str | None
    flags: tuple[str, ...]


def _snippets(block: Block) -> Iterator[tuple[int, str]]:
    if block.language is None:
        for span in SPAN.finditer(block.text):
            yield block.line + block.text.count("\n", 0, span.start()), " ".join(span.group(2).split())
    elif block.language in SHELL:
        for offset, line in enumerate(block.text.splitlines()):
            yield block.line + offset, re.split(r"\s#", line)[0]


def parse(snippet: str) -> Iterator[tuple[str | None, tuple[str, ...]]]:
    """The (task, flags) of each `inv` in a line of shell: ``[--json]`` is an optional ``--json``; words that
    are not flags are values, positional arguments or placeholders (``TASK``), and ``inv …`` names none."""
    words = snippet.split()
    for at, word in enumerate(words):
        if word != "inv":
            continue
        rest: list[str] = []
        for token in words[at + 1 :]:
            if token in {"&&", "||", ";", "|"}:
                break
            rest.append(
                token.strip("[]()").split("=")[0] if token.startswith(("-", "[-")) else token.strip("[]")
            )
        if rest and rest[0] in {"…", "..."}:
            continue
        task = rest[0] if rest and not rest[0].startswith("-") else None
        yield task, tuple(t for t in rest if t.startswith("-"))


def commands(paths: list[Path]) -> list[Command]:
    found = []
    for path in paths:
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        for block in blocks(path):
            for line, snippet in _snippets(block):
                found += [Command(f"{shown}:{line}", task, flags) for task, flags in parse(snippet)]
    return found


def accepted_flags(help_text: str) -> set[str]:
    """The flags in the options column of `inv --help [TASK]`; ``--[no-]x`` counts as --x and --no-x."""
    found = set()
    for line in help_text.split("ptions:", 1)[-1].splitlines():
        column = re.match(r"\s{2}(-\S.*?)(?:\s{2,}|$)", line)
        for match in re.finditer(r"(--?)(\[no-\])?(\w[\w-]*)", column.group(1) if column else ""):
            dashes, negatable, name = match.groups()
            found.add(f"{dashes}{name}")
            if negatable:
                found.add(f"--no-{name}")
    return found


def nox_sessions(paths: list[Path]) -> dict[str, list[str]]:
    """Session name → where the docs run it (``nox -s lint tests``; ``nox -s NAME`` names none)."""
    found: dict[str, list[str]] = {}
    for path in paths:
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        for block in blocks(path):
            for line, snippet in _snippets(block):
                for match in re.finditer(r"\bnox\s+(?:-s|--sessions?)((?:\s+\w[\w-]*)+)", snippet):
                    for name in match.group(1).split():
                        if not name.isupper():  # NAME: a placeholder
                            found.setdefault(name, []).append(f"{shown}:{line}")
    return found
