"""Binary caches: substitute from one (``inv cache.use``), push a mode's closure to one (``inv cache.push``).

Two kinds. A Cachix cache is named, and the ``cachix`` CLI does the configuring, the auth and the signing.
Any other Nix binary cache (https, s3, a shared directory) is a URL plus its public key: ``use`` adds them
to the user's nix.conf, ``push`` runs ``nix copy --to URL``. Commands go through the one runner, so dry-run
prints the changes (nix.conf lines, pushes) while the reads that size a closure still run.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

from nixfly import console
from nixfly import nix as nixcli
from nixfly.errors import NixflyError
from nixfly.files import write_atomic
from nixfly.nix import Nix, human_size
from nixfly.runner import Runner

CACHIX_HINT = "it is in the dev shell (`nix develop`), or install it: `nix profile install nixpkgs#cachix`"
SCHEMES = ("http", "https", "file", "s3")
# A Cachix cache name, and never something cachix would read as a flag.
CACHE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# ed25519: a Nix public key is 32 bytes, its secret key 64.
PUBLIC_KEY_BYTES = 32
SECRET_KEY_BYTES = 64
# Every spelling nix.conf accepts for the two settings (the binary-cache ones are the pre-2.0 aliases).
SUBSTITUTER_SETTINGS = ("substituters", "extra-substituters", "binary-caches", "extra-binary-caches")
KEY_SETTINGS = (
    "trusted-public-keys",
    "extra-trusted-public-keys",
    "binary-cache-public-keys",
    "extra-binary-cache-public-keys",
)


def user_nix_conf() -> Path:
    """The nix.conf of this user that Nix reads: the first of ``NIX_USER_CONF_FILES``, else the XDG one."""
    listed = [p for p in os.environ.get("NIX_USER_CONF_FILES", "").split(":") if p]
    if listed:
        return Path(listed[0]).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(config_home) / "nix" / "nix.conf"


def use(runner: Runner, name: str = "", url: str = "", key: str = "", nix_conf: Path | None = None) -> str:
    """Substitute from a binary cache from now on; returns a one-line summary for the task to print.

    ``name`` is a Cachix cache (``cachix use NAME``); ``url`` with ``key`` is any other binary cache, added
    as ``extra-substituters``/``extra-trusted-public-keys`` lines to ``nix_conf`` unless already there.
    """
    if name and (url or key):
        raise NixflyError(
            "give either a Cachix cache name or a URL with its key, not both",
            "`inv cache.use --name NAME`, or `inv cache.use --url URL --key KEY`",
        )
    if name:
        _check_name(name)
        _require_cachix(runner)
        result = runner.run(
            ["cachix", "use", name],
            hint="check the name at https://app.cachix.org; a private cache needs "
            "`cachix authtoken TOKEN` first",
        )
        if result.dry_run:
            return f"dry-run: would configure Nix to substitute from the Cachix cache {name}"
        return f"Nix substitutes from the Cachix cache {name} from now on"
    if not url:
        raise NixflyError(
            "a key needs the URL of its cache" if key else "no cache given",
            "`inv cache.use --name CACHIX_NAME`, or `--url URL --key NAME:BASE64`",
        )
    _check_url(url)
    if not key:
        raise NixflyError(
            f"{url}: no public key given",
            "pass its public key, --key NAME:BASE64: Nix ignores paths it cannot verify",
        )
    _check_key(key)
    return _add_to_nix_conf(nix_conf or user_nix_conf(), url, key, dry_run=runner.dry_run)


def push(runner: Runner, nix: Nix, attr: str, out_link: Path, name: str = "", url: str = "") -> str:
    """Build (or reuse) ``.#attr`` and push its whole closure; returns a one-line summary to print.

    ``name`` pushes with ``cachix push`` (auth: ``CACHIX_AUTH_TOKEN`` or ``cachix authtoken``); ``url``
    with ``nix copy --to``. In dry-run the closure of the last build is sized and nothing is pushed.
    """
    if bool(name) == bool(url):
        raise NixflyError(
            "give exactly one cache to push to",
            "`inv cache.push --name CACHIX_NAME`, or `inv cache.push --url URL`",
        )
    if name:
        _check_name(name)
        _require_cachix(runner)
        target = f"the Cachix cache {name}"
    else:
        _check_url(url)
        target = url
    built = nix.build(attr, out_link)
    store_path = built.store_path
    if not store_path:
        # Dry-run: nix build did not run, so the last build's result is the best preview there is.
        store_path = _last_build(out_link)
        if not store_path:
            return f"dry-run: nothing built yet at {out_link.name}: `inv build` first to see what it holds"
        console.note(f"showing {out_link.name}, the last build: `nix build` runs first and may change it")
    count, size = nix.closure_size(store_path)
    verb = "would push" if runner.dry_run else "pushing"
    console.table(
        f"{verb} .#{attr} to {target}",
        ("store path", "paths", "size"),
        [(store_path, count, human_size(size))],
    )
    if name:
        argv = ["cachix", "push", name, store_path]
        hint = "pushing needs write access: set CACHIX_AUTH_TOKEN or run `cachix authtoken TOKEN`"
    else:
        argv = nixcli.argv("copy", "--to", url, store_path)
        hint = (
            "nix copy needs write access to the cache (s3: AWS credentials; a directory: write "
            "permission); its users trust only paths signed by a key they trust"
        )
    result = runner.run(argv, hint=hint)
    if result.dry_run:
        return f"dry-run: would push {count} paths ({human_size(size)}) of .#{attr} to {target}"
    return f"pushed {count} paths ({human_size(size)}) of .#{attr} to {target}"


def _last_build(out_link: Path) -> str:
    if not out_link.is_symlink():
        return ""
    target = os.readlink(out_link)
    return target if Path(target).exists() else ""


def _require_cachix(runner: Runner) -> None:
    if not runner.which("cachix"):
        raise NixflyError("cachix not found on PATH", CACHIX_HINT)


def _check_name(name: str) -> None:
    if not CACHE_NAME.fullmatch(name):
        raise NixflyError(
            f"{name!r} is not a Cachix cache name",
            "use the name from https://app.cachix.org (letters, digits, dashes)",
        )


def _check_url(url: str) -> None:
    # Whitespace or '#' would split or cut the nix.conf line; a value must stay one token.
    if not url or any(c.isspace() or c == "#" for c in url):
        raise NixflyError(f"{url!r} is not a binary cache URL", "no spaces or '#' in a cache URL")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise NixflyError(
            f"{url}: unsupported scheme {parts.scheme or '(none)'!r}",
            f"a binary cache URL starts with one of {', '.join(s + '://' for s in SCHEMES)}",
        )
    # Nix reads everything after file:// as the path: file://dir/x would be relative to the working directory.
    if parts.scheme == "file" and not url.startswith("file:///"):
        raise NixflyError(f"{url}: a file:// cache needs an absolute path", "e.g. file:///srv/nix-cache")
    if parts.scheme != "file" and not parts.netloc:
        raise NixflyError(
            f"{url}: no host (or bucket) in the URL", "e.g. https://cache.example.org or s3://bucket"
        )


def _check_key(key: str) -> None:
    hint = "the cache's public key, as nix.conf's trusted-public-keys has it: NAME:BASE64 (name-1:…=)"
    name, _, encoded = key.partition(":")
    if not name or not encoded or any(c.isspace() or c == "#" for c in key):
        raise NixflyError("the key is not of the form NAME:BASE64", hint)
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise NixflyError(f"the key {name}:… is not valid base64", hint) from None
    if len(raw) == SECRET_KEY_BYTES:
        # Never echo it: the value is a signing key.
        raise NixflyError(
            f"the key {name}:… is a SECRET key",
            "give the public one: `nix key convert-secret-to-public < SECRET_KEY_FILE`",
        )
    if len(raw) != PUBLIC_KEY_BYTES:
        raise NixflyError(
            f"the key {name}:… holds {len(raw)} bytes, not the {PUBLIC_KEY_BYTES} of an ed25519 key", hint
        )


def _settings(text: str) -> dict[str, list[str]]:
    """Values of each setting in nix.conf text (repeated settings pooled; '#' starts a comment)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        setting, sep, value = line.split("#", 1)[0].partition("=")
        if sep:
            found.setdefault(setting.strip(), []).extend(value.split())
    return found


def _add_to_nix_conf(nix_conf: Path, url: str, key: str, *, dry_run: bool) -> str:
    # Write through a symlink (dotfiles) so the link survives; a store path (home-manager) is read-only.
    target = nix_conf.resolve()
    text = target.read_text() if target.exists() else ""
    settings = _settings(text)
    urls = {u.rstrip("/") for s in SUBSTITUTER_SETTINGS for u in settings.get(s, [])}
    keys = {k for s in KEY_SETTINGS for k in settings.get(s, [])}
    lines = []
    if url.rstrip("/") not in urls:
        lines.append(f"extra-substituters = {url}")
    if key not in keys:
        lines.append(f"extra-trusted-public-keys = {key}")
    if not lines:
        return f"{nix_conf}: already substitutes from {url}"
    if target.is_relative_to("/nix/store"):
        raise NixflyError(
            f"{nix_conf} is a link into the read-only Nix store (home-manager?)",
            "add these to your Nix configuration instead: " + "; ".join(lines),
        )
    if dry_run:
        console.say(f"[dry-run] would add to {nix_conf}:")
        for line in lines:
            console.say(f"  {line}")
        return f"dry-run: would add {len(lines)} line(s) to {nix_conf}"
    block = "\n".join(["# added by nixfly (inv cache.use)", *lines]) + "\n"
    separator = "\n" if text and not text.endswith("\n") else ""
    # Keep a private file private: a user nix.conf may hold access-tokens.
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
    write_atomic(target, text + separator + block, mode=mode)
    console.note(
        "a multi-user Nix honours a user's substituters only for trusted-users, or for URLs "
        "listed in trusted-substituters of /etc/nix/nix.conf"
    )
    return f"{nix_conf}: added {len(lines)} line(s); Nix substitutes from {url} from now on"
