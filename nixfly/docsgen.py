"""docs/configuration.md, generated from the documented defaults in nixfly/config.py.

Each key of ``DEFAULTS`` is documented by the comment lines right above it, or at the end of its line (read
from the source with ``ast`` and ``tokenize``: the comments are the documentation, so there is one place to
write it). The keys of every mode are documented once, as ``modes.<mode>.<key>``: a comment on any mode's key
documents it for all. ``python -m nixfly.docsgen`` rewrites the file; ``--check`` exits 1 when it is stale.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import sys
import tokenize
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixfly import config

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = Path("docs") / "configuration.md"
MODE = "<mode>"


@dataclass(frozen=True)
class Key:
    """One setting: its dotted path (``modes.<mode>.app``), its defaults and what the comments say."""

    path: str
    defaults: tuple[tuple[str, Any], ...]  # (mode name or "", default), one per mode for mode keys
    doc: str
    section: bool = False  # its value holds settings of its own (``health``): a heading, not a row


def _generic(path: tuple[str, ...]) -> str:
    """``modes.integrated.app`` → ``modes.<mode>.app``: the settings of a mode are the same in every mode."""
    if len(path) >= 2 and path[0] == "modes":
        path = ("modes", MODE, *path[2:])
    return ".".join(path)


def _comments(source: str) -> tuple[dict[int, str], set[int]]:
    """Comment text by line, and the lines holding nothing but a comment."""
    text: dict[int, str] = {}
    alone: set[int] = set()
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row = token.start[0]
            text[row] = token.string.lstrip("#").strip()
            if not lines[row - 1][: token.start[1]].strip():
                alone.add(row)
    return text, alone


def _defaults_node(tree: ast.Module) -> ast.Dict:
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if [ast.unparse(t) for t in targets] == ["DEFAULTS"]:
                return node.value
    raise ValueError("nixfly/config.py has no DEFAULTS = {...}")


def key_docs(source: str) -> dict[str, str]:
    """Dotted path → documentation, for every key of ``DEFAULTS`` in ``source`` (config.py's text); a key
    without a comment maps to ""."""
    text, alone = _comments(source)

    def doc(key: ast.expr) -> str:
        """The unbroken run of comment lines right above the key, then a comment at the end of its line."""
        above: list[str] = []
        row = key.lineno - 1
        while row in alone:
            above.insert(0, text[row])
            row -= 1
        after = [text[key.lineno]] if key.lineno in text and key.lineno not in alone else []
        return " ".join(above + after)

    found: dict[str, str] = {}

    def walk(node: ast.Dict, path: tuple[str, ...]) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if not isinstance(key, ast.Constant) or not isinstance(key.value, str):
                raise ValueError(f"DEFAULTS: a key at line {getattr(key, 'lineno', '?')} is not a string")
            here = (*path, key.value)
            if path != ("modes",):  # a mode's name is not a setting: its keys are
                name = _generic(here)
                found[name] = found.get(name) or doc(key)
            if isinstance(value, ast.Dict) and _generic(here) not in config.MAPPING_VALUES:
                walk(value, here)

    walk(_defaults_node(ast.parse(source)), ())
    return found


def _values(defaults: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, str, Any, bool]]:
    """(generic path, mode name or "", default, whether it is a section) for every key of ``defaults``."""
    for name, value in defaults.items():
        here = (*path, name)
        mode = here[1] if here[0] == "modes" and len(here) > 2 else ""
        section = isinstance(value, dict) and _generic(here) not in config.MAPPING_VALUES
        if path != ("modes",):
            yield _generic(here), mode, value, section
        if section:
            yield from _values(value, here)


def keys(source: str, defaults: Mapping[str, Any]) -> list[Key]:
    """Every setting in the order ``DEFAULTS`` declares it, then those ``config.UNLISTED`` documents."""
    docs = key_docs(source)
    order: dict[str, list[tuple[str, Any]]] = {}
    sections = set()
    for path, mode, value, section in _values(defaults):
        order.setdefault(path, []).append((mode, value))
        if section:
            sections.add(path)
    found = [Key(path, tuple(v), docs.get(path, ""), path in sections) for path, v in order.items()]
    for path, (value, doc) in config.UNLISTED.items():
        found.append(Key(path, (("", value),), doc))
    return found


def undocumented(found: list[Key]) -> list[str]:
    return [key.path for key in found if not key.doc]


def _yaml(value: Any) -> str:
    """A default as one would write it in invoke.yaml (flow style)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        plain = value and not re.search(r"[{}\[\]:#,'\"]|^\s|\s$", value)
        return value if plain else json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _default(key: Key) -> str:
    shown = [(mode, f"`{_yaml(value)}`") for mode, value in key.defaults]
    if len({text for _, text in shown}) == 1:
        return shown[0][1]
    return "<br>".join(f"{mode}: {text}" for mode, text in shown)


def render(source: str, defaults: Mapping[str, Any]) -> str:
    """The text of docs/configuration.md: the top-level settings, then each section with its own table."""
    groups: dict[str, list[Key]] = {"": []}
    intros: dict[str, str] = {}
    for key in keys(source, defaults):
        top = key.path.split(".")[0]
        if key.section and top == key.path:
            intros[top] = key.doc
            groups.setdefault(top, [])
        else:
            groups.setdefault(top if "." in key.path else "", []).append(key)
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by `python -m nixfly.docsgen` from the comments on DEFAULTS in nixfly/config.py:",
        "     edit those, then regenerate. tests/unit/test_docsgen.py fails when this file is stale. -->",
        "",
        "Every setting nixfly reads, with its default. Set any of them in `invoke.yaml` under `nixfly:`; a",
        "flag beats invoke.yaml, which beats these defaults. A dotted path is nested YAML:",
        "`nixfly.modes.integrated.app: my-app` is",
        "",
        "```yaml",
        "nixfly:",
        "  modes:",
        "    integrated:",
        "      app: my-app",
        "```",
        "",
        "Every value is checked before anything runs: a wrong type, an unknown (mistyped) key or a value",
        "out of range is one `error:` line naming the key.",
    ]
    for group, members in groups.items():
        lines += ["", f"## `{group}`" if group else "## Top-level settings", ""]
        if group:
            lines += [intros[group], ""]
        lines += ["| key | default | what it is |", "|---|---|---|"]
        for key in members:
            default = "(a section)" if key.section else _default(key)
            doc = key.doc.replace("|", "\\|")
            lines.append(f"| `{key.path}` | {default} | {doc} |")
    return "\n".join(lines) + "\n"


def generate(root: Path, *, check: bool = False) -> int:
    """Write ``root``/docs/configuration.md (or, with ``check``, compare it); 1 with an error line when a
    setting is undocumented or the file is stale."""
    source = Path(config.__file__).read_text(encoding="utf-8")
    missing = undocumented(keys(source, config.DEFAULTS))
    if missing:
        print(f"error: undocumented settings: {', '.join(missing)}", file=sys.stderr)
        print("  add a comment right above each key in nixfly/config.py's DEFAULTS", file=sys.stderr)
        return 1
    text = render(source, config.DEFAULTS)
    path = root / OUTPUT
    if check:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            print(f"error: {OUTPUT} is stale: regenerate it with `python -m nixfly.docsgen`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nixfly.docsgen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is stale")
    return generate(ROOT, check=parser.parse_args(argv).check)


if __name__ == "__main__":
    sys.exit(main())
