#!/usr/bin/env bash
# The main job on the embedded default (installs the environment first when needed).
# Extra args go to `swiftavatar demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/swiftavatar demo "$@"
