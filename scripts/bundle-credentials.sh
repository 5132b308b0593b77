#!/usr/bin/env bash
# Kept for muscle memory and old docs: bundling now lives in `inv bundle` (see `inv --help bundle`).
# Usage: scripts/bundle-credentials.sh [ENV_FILE]   (default .env.fly, relative to the current directory)
# Anything else (a second argument, an option such as --dry-run) is refused before a file is written:
# `inv bundle --dry-run` is the way to look first.
set -euo pipefail

usage() {
  printf 'usage: %s [ENV_FILE]   (default .env.fly; for options use: inv bundle --help)\n' "$0" >&2
  exit 2
}

case ${1:-} in
  -h | --help)
    printf 'usage: %s [ENV_FILE]   (default .env.fly; for options use: inv bundle --help)\n' "$0"
    exit 0
    ;;
  -*) usage ;;
esac
if [[ $# -gt 1 ]]; then
  usage
fi

env_file=${1:-.env.fly}
case $env_file in
  /*) ;;
  *) env_file="$PWD/$env_file" ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec inv bundle --env-file "$env_file"
