#!/usr/bin/env bash
# Prepare a Debian/Ubuntu machine for single-user Nix as root (no daemon), after
#   apt-get install -y nix-bin
# Idempotent: run it as often as you like; it says what it changed.
#
#   .ci/setup-nix.sh             flakes on, builds as root if there are no nixbld build users;
#                                the binary cache and the sandbox stay as they are
#   .ci/setup-nix.sh --offline   also no binary cache, no sandbox, builds as root, no registry download:
#                                what CI uses on a machine without network (.ci/run passes it)
#   NIX_CONF_DIR=/tmp/etc-nix .ci/setup-nix.sh   writes elsewhere (Nix reads NIX_CONF_DIR too)
#
# What and why:
#   * /nix, /nix/store, /nix/var/nix exist and belong to root: single-user Nix as root writes
#     the store itself (no nix-daemon; Debian's package only starts one under systemd).
#   * nix.conf: a block between "# BEGIN nixfly" and "# END nixfly", replaced on every run (so
#     running without --offline takes the offline settings out again); lines outside it are kept:
#       extra-experimental-features = nix-command flakes   flakes and the `nix` command; adds to,
#                                                          never replaces, the features you set
#       build-users-group =          only when there is no nixbld group (or always with --offline):
#                                    builders run as root. Nix as root defaults to nixbld* build users
#                                    and refuses to build when that group is missing; the offline
#                                    shim also links the host's Python, which may live under /root
#     with --offline only:
#       sandbox = false              the shim builds with host tools (/usr/bin)
#       substituters =               no binary cache: no network to reach one
#       flake-registry = <empty registry file>   never download the global flake registry
#     NIXFLY_NIX_OPTIONS (tests/nix/README.md) passes the offline settings on the command line, so
#     nixfly works with or without this file; the block makes hand-typed nix commands agree.
#   * git safe.directory for the checkout when root does not own it: Nix reads a flake through
#     git, and git refuses repositories owned by another user.
set -euo pipefail

die() {
  printf 'setup-nix: %s\n' "$*" >&2
  exit 1
}
usage() {
  printf 'usage: %s [--offline]   (see the comment at the top of this script)\n' "$0" >&2
  exit 2
}
said() { printf 'setup-nix: %s\n' "$*"; }

offline=""
for arg in "$@"; do
  case $arg in
    --offline) offline=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) usage ;;
  esac
done

[[ $EUID -eq 0 ]] || die "run as root (single-user Nix as root is what nixfly's CI uses)"
command -v nix >/dev/null || die "nix is not installed: apt-get install -y nix-bin"
command -v git >/dev/null || die "git is not installed (flakes are read through git): apt-get install -y git"

conf_dir="${NIX_CONF_DIR:-/etc/nix}"
conf_file="$conf_dir/nix.conf"
registry_file="$conf_dir/nixfly-flake-registry.json"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# 1. The store, owned by root.
for dir in /nix /nix/store /nix/var /nix/var/nix; do
  if [[ ! -d $dir ]]; then
    mkdir -p "$dir"
    said "created $dir"
  fi
  if [[ $(stat -c %u "$dir") != 0 ]]; then
    chown root:root "$dir"
    said "$dir now belongs to root"
  fi
done
chmod 0755 /nix /nix/var /nix/var/nix
chmod 1775 /nix/store

# 2. nix.conf: replace our block, keep everything else.
mkdir -p "$conf_dir"
touch "$conf_file"
block="# BEGIN nixfly (.ci/setup-nix.sh rewrites this block)
extra-experimental-features = nix-command flakes"
if [[ -n $offline ]] || ! getent group nixbld >/dev/null; then
  block+="
# builders run as root (single-user Nix as root; no nixbld build users here)
build-users-group ="
fi
if [[ -n $offline ]]; then
  printf '{\n  "flakes": [],\n  "version": 2\n}\n' >"$registry_file"
  block+="
# offline (--offline): no binary cache, no sandbox, no registry download
sandbox = false
substituters =
flake-registry = $registry_file"
fi
block+="
# END nixfly"
kept="$(sed '/^# BEGIN nixfly/,/^# END nixfly/d' "$conf_file")"
if [[ -n $kept ]]; then
  printf '%s\n%s\n' "$kept" "$block" >"$conf_file.new"
else
  printf '%s\n' "$block" >"$conf_file.new"
fi
if cmp -s "$conf_file" "$conf_file.new"; then
  rm "$conf_file.new"
  said "$conf_file unchanged"
else
  mv "$conf_file.new" "$conf_file"
  said "$conf_file: the nixfly block is now:"
  sed -n '/^# BEGIN nixfly/,/^# END nixfly/p' "$conf_file" | sed 's/^/    /'
fi
if [[ -z $offline ]]; then
  said "binary cache and sandbox: as configured, not touched (--offline is for CI without network)"
fi

# 3. git refuses checkouts owned by someone else ("dubious ownership").
if [[ -d $repo_root/.git || -f $repo_root/.git ]] && [[ $(stat -c %u "$repo_root") != 0 ]]; then
  if ! git config --global --get-all safe.directory | grep -qxF "$repo_root"; then
    git config --global --add safe.directory "$repo_root"
    said "git: added $repo_root to root's safe.directory (root reads a checkout owned by another user)"
  fi
fi

# 4. Prove it with only this configuration. Offline: build a derivation that needs nothing but the
#    host's /bin/sh (the background sleep dodges Nix 2.8 killing builders that exit at once,
#    NixOS/nix#2176). Otherwise the sandbox may have no /bin/sh (Debian 12's Nix has no sandbox
#    shell) and real builds fetch from the cache: evaluating with flakes on is the check.
if [[ -n $offline ]]; then
  # shellcheck disable=SC2016 # $out belongs to the builder's shell
  NIX_CONF_DIR="$conf_dir" nix build --no-link --impure --expr \
    'derivation { name = "nixfly-setup-probe"; system = builtins.currentSystem;
       builder = "/bin/sh"; args = [ "-c" "echo ok > $out; /bin/sleep 0.2 &" ]; }'
else
  NIX_CONF_DIR="$conf_dir" nix eval --raw --expr '"flakes on\n"' >/dev/null
fi
said "$(nix --version) ready ($conf_file)"
