#!/usr/bin/env bash
# Kept for muscle memory and old docs: the deploy now lives in `inv deploy` (see `inv --help deploy`).
# Usage: scripts/deploy-fly-nix.sh APP MODE [extra inv deploy flags...]
#   MODE is integrated or ai-server-only.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 APP MODE [inv deploy flags...]   (MODE: integrated | ai-server-only)" >&2
  exit 2
fi
app=$1
mode=$2
shift 2
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec inv deploy --app "$app" --mode "$mode" "$@"
