#!/usr/bin/env bash
# Stop what deploy/up.sh and deploy/worker.sh started: SIGTERM to each service's process group
# (webserver, daemon and its code servers, Celery workers), then SIGKILL after 30 s. Runs in
# flight are left to run monitoring (they are marked failed or resumed when the daemon is back).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/lib.sh
stop webserver
stop daemon
for pidfile in "$run"/celery-*.pid; do
  [[ -e "$pidfile" ]] && stop "$(basename "$pidfile" .pid)"
done
exit 0
