#!/usr/bin/env bash
# Set up the app and serve the web app and HTTP API: scripts/serve.sh [imagefind serve args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
exec .venv/bin/imagefind serve "$@"
