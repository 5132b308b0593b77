"""A strict, cobra/pflag-faithful command-line parser: the command tree types and the parsing rules.

Behaviour copied from spf13/cobra (command lookup, argument-count validators) and spf13/pflag (flag syntax):

* long flags ``--x v`` / ``--x=v``; a non-bool flag takes the NEXT argument even when it starts with ``-``;
* bool flags take no separate value (``--detach=false`` works, ``--detach false`` makes ``false`` positional);
* shorthands ``-a v``, ``-av``, ``-a=v``, combined bool shorthands ``-jy``;
* ``--`` ends flag parsing, ``-`` alone is positional, flags and positionals may be interleaved;
* only the first non-flag argument is tried as a sub-command name (cobra's ``Find``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from flyctl_sim.errors import FlyError, HelpRequested

if TYPE_CHECKING:
    from flyctl_sim.invocation import Invocation

BOOL = "bool"
STRING = "string"
INT = "int"
FLOAT = "float64"
STRING_ARRAY = "stringArray"
STRING_SLICE = "strings"

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class Flag(NamedTuple):
    """One flag, as pflag defines it."""

    name: str
    kind: str = STRING
    shorthand: str = ""
    default: Any = None
    usage: str = ""
    # flyctl internal/flag/flag.go: a flag's Aliases are extra (hidden) flag names read as the same flag.
    aliases: tuple[str, ...] = ()

    def display(self) -> str:
        """How pflag names the flag in ``invalid argument`` errors."""
        return f"-{self.shorthand}, --{self.name}" if self.shorthand else f"--{self.name}"

    def zero(self) -> Any:
        if self.default is not None:
            return list(self.default) if isinstance(self.default, list) else self.default
        return {BOOL: False, STRING: "", INT: 0, FLOAT: 0.0, STRING_ARRAY: [], STRING_SLICE: []}[self.kind]


class Args(NamedTuple):
    """A cobra positional-argument validator (``NoArgs``, ``ExactArgs(n)``, ``RangeArgs``...)."""

    low: int = 0
    high: int | None = 0  # None: unbounded

    def check(self, command: Command, args: Sequence[str]) -> None:
        n = len(args)
        if self.low == 0 and self.high == 0:
            if n:  # cobra.NoArgs
                raise FlyError(f'unknown command "{args[0]}" for "{command.path()}"')
            return
        if self.high is None:
            if n < self.low:
                raise FlyError(f"requires at least {self.low} arg(s), only received {n}")
        elif self.low == self.high:
            if n != self.low:
                raise FlyError(f"accepts {self.low} arg(s), received {n}")
        elif self.low == 0:
            if n > self.high:
                raise FlyError(f"accepts at most {self.high} arg(s), received {n}")
        elif not self.low <= n <= self.high:
            raise FlyError(f"accepts between {self.low} and {self.high} arg(s), received {n}")


NO_ARGS = Args(0, 0)


def exact(n: int) -> Args:
    return Args(n, n)


def at_most(n: int) -> Args:
    return Args(0, n)


def at_least(n: int) -> Args:
    return Args(n, None)


Runner = Callable[["Invocation"], "Callable[[], int] | None"]


class Command:
    """A cobra command: name, aliases, local flags, persistent flags, positional rule and handler."""

    def __init__(
        self,
        name: str,
        short: str = "",
        usage: str = "",
        aliases: tuple[str, ...] = (),
        flags: tuple[Flag, ...] = (),
        persistent: tuple[Flag, ...] = (),
        args: Args = NO_ARGS,
        run: Runner | None = None,
        needs_auth: bool = True,
    ) -> None:
        self.name = name
        self.short = short
        self.usage = usage
        self.aliases = aliases
        self.flags = flags
        self.persistent = persistent
        self.args = args
        self.run = run
        self.needs_auth = needs_auth
        self.children: list[Command] = []
        self.parent: Command | None = None

    def __repr__(self) -> str:
        return f"Command({self.path()!r})"

    def add(self, *children: Command) -> Command:
        for child in children:
            child.parent = self
            self.children.append(child)
        return self

    def path(self) -> str:
        """``flyctl apps create``: what cobra's ``CommandPath`` returns (the root is always ``flyctl``)."""
        return self.name if self.parent is None else f"{self.parent.path()} {self.name}"

    def canonical(self) -> str:
        """The command path without the root: ``apps create``; aliases are already resolved."""
        return self.path().partition(" ")[2]

    def find_child(self, word: str) -> Command | None:
        for child in self.children:
            if word == child.name or word in child.aliases:
                return child
        return None

    def all_flags(self) -> list[Flag]:
        """Local flags, then persistent flags inherited from every ancestor, then cobra's ``-h/--help``."""
        out = list(self.flags)
        node: Command | None = self
        while node is not None:
            out.extend(node.persistent)
            node = node.parent
        out.append(Flag("help", BOOL, "h", usage=f"help for {self.name}"))
        return out


class Parsed(NamedTuple):
    """The outcome of parsing: the command found, flag values by long name, which were set, positionals."""

    command: Command
    values: dict[str, Any]
    explicit: set[str]
    args: list[str]


def _lookup(flags: Sequence[Flag]) -> tuple[dict[str, Flag], dict[str, Flag]]:
    longs = {f.name: f for f in flags}
    for f in flags:
        for alias in f.aliases:
            longs.setdefault(alias, f)
    return longs, {f.shorthand: f for f in flags if f.shorthand}


def _strip_flags(args: Sequence[str], command: Command) -> list[str]:
    """cobra's ``stripFlags``: the non-flag words, skipping the value of a known non-bool flag."""
    longs, shorts = _lookup(command.all_flags())
    out: list[str] = []
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word == "--":
            break
        if word.startswith("--") and "=" not in word:
            flag = longs.get(word[2:])
            if flag is not None and flag.kind != BOOL and rest:
                rest.pop(0)
        elif word.startswith("-") and len(word) == 2 and word != "--":
            flag = shorts.get(word[1])
            if flag is not None and flag.kind != BOOL and rest:
                rest.pop(0)
        elif word.startswith("-") and word != "-":
            continue
        else:
            out.append(word)
    return out


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _suggestions(command: Command, word: str) -> str:
    """cobra's ``findSuggestions``: distance <= 2 or a prefix match, listed under "Did you mean this?"."""
    hits = [
        c.name
        for c in command.children
        if _levenshtein(word.lower(), c.name.lower()) <= 2 or c.name.lower().startswith(word.lower())
    ]
    if not hits:
        return ""
    return "\n\nDid you mean this?\n" + "".join(f"\t{h}\n" for h in hits)


def find(root: Command, argv: Sequence[str]) -> tuple[Command, list[str]]:
    """cobra's ``Find``: walk sub-commands by the first non-flag word; reject unknown sub-commands."""
    command, rest = root, list(argv)
    while True:
        words = _strip_flags(rest, command)
        if not words:
            return command, rest
        child = command.find_child(words[0])
        if child is None:
            if command.children:
                # Plain cobra shows help for a nested group given an unknown word; flyctl (and the brief for
                # this simulator) reports it as an unknown command, which is what callers must handle anyway.
                msg = f'unknown command "{words[0]}" for "{command.path()}"'
                raise FlyError(msg + _suggestions(command, words[0]))
            return command, rest
        rest.remove(words[0])
        command = child


def _convert(flag: Flag, raw: str) -> Any:
    def bad(reason: str) -> FlyError:
        return FlyError(f'invalid argument "{raw}" for "{flag.display()}" flag: {reason}')

    if flag.kind == BOOL:
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise bad(f'strconv.ParseBool: parsing "{raw}": invalid syntax')
    if flag.kind == INT:
        try:
            return int(raw, 0)
        except ValueError:
            raise bad(f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None
    if flag.kind == FLOAT:
        try:
            return float(raw)
        except ValueError:
            raise bad(f'strconv.ParseFloat: parsing "{raw}": invalid syntax') from None
    if flag.kind == STRING_SLICE:
        return [part.strip('"') for part in raw.split(",")] if raw else []
    return raw


def _set(values: dict[str, Any], explicit: set[str], flag: Flag, raw: str) -> None:
    value = _convert(flag, raw)
    if flag.kind == STRING_ARRAY:
        values[flag.name] = [*(values[flag.name] if flag.name in explicit else []), value]
    elif flag.kind == STRING_SLICE:
        values[flag.name] = [*(values[flag.name] if flag.name in explicit else []), *value]
    else:
        values[flag.name] = value
    explicit.add(flag.name)


def parse_flags(command: Command, argv: Sequence[str]) -> Parsed:
    """pflag's ``Parse`` with interspersed positionals, for ``command``'s local and inherited flags."""
    flags = command.all_flags()
    longs, shorts = _lookup(flags)
    values = {f.name: f.zero() for f in flags}
    explicit: set[str] = set()
    positional: list[str] = []
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word == "--":
            positional.extend(rest)
            break
        if not word.startswith("-") or word == "-":
            positional.append(word)
            continue
        if word.startswith("--"):
            body = word[2:]
            if body.startswith("-") or body.startswith("="):
                raise FlyError(f"bad flag syntax: {word}")
            name, has_value, value = body.partition("=")
            flag = longs.get(name)
            if flag is None:
                raise FlyError(f"unknown flag: --{name}")
            if has_value:
                _set(values, explicit, flag, value)
            elif flag.kind == BOOL:
                _set(values, explicit, flag, "true")
            elif rest:
                _set(values, explicit, flag, rest.pop(0))
            else:
                raise FlyError(f"flag needs an argument: --{name}")
            continue
        shorthands = word[1:]
        while shorthands:
            char = shorthands[0]
            flag = shorts.get(char)
            if flag is None:
                raise FlyError(f"unknown shorthand flag: '{char}' in {word}")
            if len(shorthands) > 2 and shorthands[1] == "=":
                _set(values, explicit, flag, shorthands[2:])
                shorthands = ""
            elif flag.kind == BOOL:
                _set(values, explicit, flag, "true")
                shorthands = shorthands[1:]
            elif len(shorthands) > 1:
                _set(values, explicit, flag, shorthands[1:])
                shorthands = ""
            elif rest:
                _set(values, explicit, flag, rest.pop(0))
                shorthands = ""
            else:
                raise FlyError(f"flag needs an argument: '{char}' in {word}")
    return Parsed(command, values, explicit, positional)


def parse(root: Command, argv: Sequence[str]) -> Parsed:
    """Find the command, parse its flags, honour ``--help``, validate positionals (cobra's order)."""
    command, rest = find(root, argv)
    parsed = parse_flags(command, rest)
    if parsed.values.get("help") or command.run is None:
        raise HelpRequested(help_text(command))
    command.args.check(command, parsed.args)
    return parsed


def help_text(command: Command) -> str:
    """A short cobra-style usage text."""
    lines = [command.short or command.name, "", "Usage:"]
    if command.run is not None:
        lines.append(f"  {command.path()} {command.usage}".rstrip() + " [flags]")
    if command.children:
        lines.append(f"  {command.path()} [command]")
    if command.aliases:
        lines += ["", "Aliases:", "  " + ", ".join((command.name, *command.aliases))]
    if command.children:
        lines += ["", "Available Commands:"]
        width = max(len(c.name) for c in command.children)
        lines += [f"  {c.name.ljust(width)}  {c.short}" for c in command.children]

    def table(flags: Sequence[Flag]) -> list[str]:
        rows = []
        for f in flags:
            short = f"-{f.shorthand}, " if f.shorthand else "    "
            kind = "" if f.kind == BOOL else f" {f.kind}"
            rows.append((f"  {short}--{f.name}{kind}", f.usage))
        width = max(len(r[0]) for r in rows)
        return [f"{left.ljust(width)}   {right}".rstrip() for left, right in rows]

    globals_ = [f for f in command.all_flags() if f not in command.flags and f.name != "help"]
    lines += [
        "",
        "Flags:",
        *table([*command.flags, Flag("help", BOOL, "h", usage=f"help for {command.name}")]),
    ]
    if globals_:
        lines += ["", "Global Flags:", *table(globals_)]
    if command.children:
        lines += ["", f'Use "{command.path()} [command] --help" for more information about a command.']
    return "\n".join(lines) + "\n"
