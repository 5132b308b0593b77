#!/usr/bin/env bash
# The seed's entry point, kept so old docs keep working: it hands over to `inv bundle`.
# Usage: ai-server/scripts/bundle-credentials.sh [ENV_FILE]
exec "$(dirname "${BASH_SOURCE[0]}")/../../scripts/bundle-credentials.sh" "$@"
