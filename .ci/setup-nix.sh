#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu machine for nixfly's offline CI, after
#   apt-get install -y nix-bin
# Single-user Nix (no daemon), builds run as root, no binary cache, no registry downloads.
# Idempotent: run it as often as you like.
#
#   .ci/setup-nix.sh            # configures /etc/nix/nix.conf
#   NIX_CONF_DIR=/tmp/etc-nix .ci/setup-nix.sh   # writes elsewhere (Nix reads NIX_CONF_DIR too)
#
# What and why:
#   * /nix, /nix/store, /nix/var/nix exist and belong to root: single-user Nix as root writes
#     the store itself (no nix-daemon; Debian's package only starts one under systemd).
#   * nix.conf (a block between "# BEGIN nixfly" and "# END nixfly", replaced on every run):
#       experimental-features = nix-command flakes   flakes and the `nix` command (Nix 2.8)
#       build-users-group =                          builders run as root, not as nixbld*: the
#                                                    offline nixpkgs shim links the host's
#                                                    Python, which lives under /root (mode 700)
#       sandbox = false                              the shim builds with host tools (/usr/bin)
#       substituters =                               no binary cache: no network to reach one
#       flake-registry = <empty registry file>       never download the global flake registry
#     NIXFLY_NIX_OPTIONS (tests/nix/README.md) passes the same settings on the command line,
#     so nixfly works with or without this file; this makes hand-typed nix commands agree.
#   * git safe.directory for the checkout when root does not own it: Nix reads a flake
#     through git, and git refuses repositories owned by another user.
set -euo pipefail

die() {
  printf 'setup-nix: %s\n' "$*" >&2
  exit 1
}

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
  fi
  if [[ $(stat -c %u "$dir") != 0 ]]; then
    chown root:root "$dir"
  fi
done
chmod 0755 /nix /nix/var /nix/var/nix
chmod 1775 /nix/store

# 2. nix.conf: replace our block, keep everything else.
mkdir -p "$conf_dir"
printf '{\n  "flakes": [],\n  "version": 2\n}\n' >"$registry_file"
touch "$conf_file"
block="# BEGIN nixfly (.ci/setup-nix.sh rewrites this block)
experimental-features = nix-command flakes
build-users-group =
sandbox = false
substituters =
flake-registry = $registry_file
# END nixfly"
kept="$(sed '/^# BEGIN nixfly/,/^# END nixfly/d' "$conf_file")"
if [[ -n $kept ]]; then
  printf '%s\n%s\n' "$kept" "$block" >"$conf_file.new"
else
  printf '%s\n' "$block" >"$conf_file.new"
fi
mv "$conf_file.new" "$conf_file"

# 3. git refuses checkouts owned by someone else ("dubious ownership").
if [[ -d $repo_root/.git && $(stat -c %u "$repo_root") != 0 ]]; then
  if ! git config --global --get-all safe.directory | grep -qxF "$repo_root"; then
    git config --global --add safe.directory "$repo_root"
  fi
fi

# 4. Prove it: with only this configuration, build a derivation that needs nothing but /bin/sh.
#    (The background sleep dodges Nix 2.8 killing builders that exit at once, NixOS/nix#2176.)
# shellcheck disable=SC2016 # $out belongs to the builder's shell
NIX_CONF_DIR="$conf_dir" nix build --no-link --impure --expr \
  'derivation { name = "nixfly-setup-probe"; system = builtins.currentSystem;
     builder = "/bin/sh"; args = [ "-c" "echo ok > $out; /bin/sleep 0.2 &" ]; }'
printf 'setup-nix: %s ready (%s)\n' "$(nix --version)" "$conf_file"
