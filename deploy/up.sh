#!/usr/bin/env bash
# Production on one host: dagster-daemon (schedules, sensors, run queue, run monitoring) and
# dagster-webserver (loopback by default) against the Postgres instance, for every code
# location in workspace.yaml. Stop them with deploy/down.sh.
#
#   DAGSTER_POSTGRES_URL=postgresql+psycopg2://USER[:PASSWORD]@HOST:5432/DB deploy/up.sh
#
# Optional: DAGSTER_HOME (./.dagster_prod), PLATFORM_DATA_ROOT (./.data),
# DAGSTER_WEB_HOST (127.0.0.1), DAGSTER_WEB_PORT (3000), DAGSTER_WORKSPACE (workspace.yaml: the
# code locations to serve). Logs and pid files: $DAGSTER_HOME/run/.
# With DAGSTER_CELERY_BROKER_URL set, steps run on Celery workers (deploy/worker.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DAGSTER_POSTGRES_URL:?set DAGSTER_POSTGRES_URL=postgresql+psycopg2://user[:password]@host:port/db}"
source deploy/lib.sh
host="${DAGSTER_WEB_HOST:-127.0.0.1}"
port="${DAGSTER_WEB_PORT:-3000}"
workspace="${DAGSTER_WORKSPACE:-workspace.yaml}"
cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"

# Fail early, and say why, when the database is not reachable (the URL is never printed).
.venv/bin/python - <<'PY'
import os, sys
import sqlalchemy
try:
    with sqlalchemy.create_engine(os.environ["DAGSTER_POSTGRES_URL"]).connect():
        pass
except Exception as exc:
    sys.exit(f"error: cannot connect to DAGSTER_POSTGRES_URL: {type(exc).__name__}")
PY

start daemon .venv/bin/dagster-daemon run -w "$workspace"
start webserver .venv/bin/dagster-webserver -w "$workspace" -h "$host" -p "$port"

# Up means both serve: the web UI answers, and the daemon has beaten once (until then a CLI
# would run here instead of submitting to it).
answered=0
for _ in $(seq 1 120); do
  if .venv/bin/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "http://$host:$port/server_info" 2>/dev/null; then
    answered=1
    break
  fi
  kill -0 "$(cat "$run/webserver.pid")" 2>/dev/null || { tail -20 "$run/webserver.log" >&2; exit 1; }
  sleep 1
done
if ((!answered)); then
  echo "error: the webserver did not answer within 120 s (see $run/webserver.log)" >&2
  exit 1
fi
.venv/bin/python - "$run/daemon.pid" <<'PY' || { tail -20 "$run/daemon.log" >&2; exit 1; }
import os, sys, time
import dagster as dg
from platform_core.health import daemon_serves

pid = int(open(sys.argv[1]).read())
deadline = time.monotonic() + 120
with dg.DagsterInstance.get() as inst:
    while not daemon_serves(inst):
        os.kill(pid, 0)  # the daemon died: fail now, not at the deadline
        if time.monotonic() > deadline:
            sys.exit("error: the daemon did not heartbeat within 120 s")
        time.sleep(1)
PY
echo "web UI: http://$host:$port (daemon log: $run/daemon.log)"
