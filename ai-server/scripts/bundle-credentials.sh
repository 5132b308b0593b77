#!/usr/bin/env bash
# The seed's entry point, kept so old docs keep working: it hands over to `inv bundle`.
# Usage: ai-server/scripts/bundle-credentials.sh [ENV_FILE]
# (scripts/bundle-credentials.sh checks the arguments: anything but one ENV_FILE is refused.)
exec "$(dirname "${BASH_SOURCE[0]}")/../../scripts/bundle-credentials.sh" "$@"
