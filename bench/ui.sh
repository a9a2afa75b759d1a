#!/usr/bin/env bash
# The web UI's weight and speed (issue 14): for the flow editor and an execution page, the
# bytes the browser transfers (HTML, stylesheet, script, icon) and the time to first
# contentful paint, in Debian's headless Chromium driven by playwright-core (the browser tests'
# tools), each page loaded RUNS times with a cold cache, median reported. Never run in CI.
#
# Usage: bench/ui.sh [PATH/TO/kestrel]    RUNS=20
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
target=${CARGO_TARGET_DIR:-target}
bin=${1:-$target/release/kestrel}
./scripts/browser-deps >/dev/null
bench_setup "$bin"
printf '%s\n' 'bench-ui-password-1' | "$bin" users add bench >/dev/null 2>&1
bench_start_server "$bin" "$work/server.log"
trap 'kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
auth="Authorization: Basic $(printf %s bench:bench-ui-password-1 | base64)"
curl -sf -H "$auth" -H 'Content-Type: application/x-yaml' --data-binary @examples/hello-secret.yml \
  "$address/api/v1/main/flows" >/dev/null
execution=$(SECRET_MYPASSWORD=cGFzc3dvcmQ= curl -sf -X POST -H "$auth" \
  "$address/api/v1/main/executions/company.team/secretTest?wait=true" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
KESTREL_URL=$address KESTREL_EXECUTION=$execution RUNS=${RUNS:-20} \
  NODE_PATH=tests/browser/node_modules node bench/ui-pages.mjs
