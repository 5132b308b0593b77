#!/usr/bin/env bash
# Kept for muscle memory and old docs: the deploy now lives in `inv deploy` (see `inv --help deploy`).
# Usage: scripts/deploy-fly-nix.sh APP MODE [extra inv deploy flags...]
#   MODE is integrated or ai-server-only. The extra flags go to `inv deploy`, which refuses unknown ones.
set -euo pipefail

usage() {
  printf 'usage: %s APP MODE [inv deploy flags...]   (MODE: integrated | ai-server-only)\n' "$0" >&2
  exit 2
}

case ${1:-} in
  -h | --help)
    printf 'usage: %s APP MODE [inv deploy flags...]   (MODE: integrated | ai-server-only)\n' "$0"
    exit 0
    ;;
esac
if [[ $# -lt 2 || $1 == -* ]]; then
  usage
fi
case $2 in
  integrated | ai-server-only) ;;
  *) usage ;;
esac
app=$1
mode=$2
shift 2
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec inv deploy --app "$app" --mode "$mode" "$@"
