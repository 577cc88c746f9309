#!/usr/bin/env bash
# Runs the test suite (installs the environment first when needed). Extra args go to pytest.
#   bash scripts/test.sh          every test (what CI runs)
#   bash scripts/test.sh --fast   the inner loop: leaves out the tests marked slow or e2e
#                                 (end-to-end pipelines, multi-node clusters, killed drivers)
set -euo pipefail
cd "$(dirname "$0")/.."
select=()
args=()
for arg in "$@"; do
    if [[ "$arg" == "--fast" ]]; then
        select=(-m "not slow and not e2e")
    else
        args+=("$arg")
    fi
done
bash scripts/bootstrap.sh
# The web page's browser test (tests/test_web_page.py) needs Debian's chromium: installed here
# when missing and we can (root, apt-get); otherwise that test skips, saying how to install it.
if ! command -v chromium >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    { DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
        || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; } \
        || echo "test.sh: could not install chromium; tests/test_web_page.py will skip" >&2
fi
export RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/python -m pytest -q ${select[@]+"${select[@]}"} ${args[@]+"${args[@]}"}
