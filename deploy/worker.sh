#!/usr/bin/env bash
# Start one Celery step worker (dagster-celery) on this host: it takes steps from the broker's
# "dagster" queue and runs them against the same instance (DAGSTER_HOME, Postgres) and data
# (PLATFORM_DATA_ROOT, shared storage when workers are on several hosts). Start several, on
# as many hosts as you like; deploy/down.sh stops the ones started here.
#
#   DAGSTER_CELERY_BROKER_URL=pyamqp://guest:guest@127.0.0.1:5672// deploy/worker.sh NAME
#
# Optional: DAGSTER_CELERY_BACKEND_URL (rpc://; a redis:// URL with a Redis broker).
# The code servers need the same DAGSTER_CELERY_BROKER_URL to send steps to the queue.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DAGSTER_CELERY_BROKER_URL:?set DAGSTER_CELERY_BROKER_URL (pyamqp://... or redis://...)}"
name="${1:?usage: deploy/worker.sh NAME}"
[[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "error: worker name '$name': letters, digits, _ and - only" >&2; exit 2; }
source deploy/lib.sh
# --pool solo: a step runs in the worker process itself, so steps may start their own process
# pools (ECOD tool workers, imaging well workers); one step at a time per worker.
start "celery-$name" .venv/bin/celery -A platform_core.celery_worker worker --pool solo \
  --queues dagster --hostname "$name@%h" --prefetch-multiplier 1 --without-gossip \
  --without-mingle --loglevel INFO
echo "celery worker $name started (log: $run/celery-$name.log)"
