#!/usr/bin/env bash
# Kept for muscle memory and old docs: bundling now lives in `inv bundle` (see `inv --help bundle`).
# Usage: scripts/bundle-credentials.sh [ENV_FILE]   (default .env.fly, relative to the repository root)
set -euo pipefail

env_file=${1:-.env.fly}
case $env_file in
  /*) ;;
  *) env_file="$PWD/$env_file" ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec inv bundle --env-file "$env_file"
