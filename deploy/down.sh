#!/usr/bin/env bash
# Stop what deploy/up.sh started: SIGTERM to each service's process group (daemon and its
# code servers, webserver), then SIGKILL after 30 s. Runs in flight are left to run
# monitoring (they are marked failed or resumed when the daemon is back).
set -euo pipefail
cd "$(dirname "$0")/.."
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_prod}"
run="$DAGSTER_HOME/run"
for name in webserver daemon; do
  [[ -f "$run/$name.pid" ]] || continue
  pid="$(cat "$run/$name.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$run/$name.pid"
  echo "$name stopped"
done
