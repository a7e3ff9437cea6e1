# Shared by up.sh, worker.sh and down.sh: one process group per service, pid and log files in
# $DAGSTER_HOME/run, so stopping a service stops its children (code servers, pool workers).
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_prod}"
export PLATFORM_DATA_ROOT="${PLATFORM_DATA_ROOT:-$PWD/.data}"
run="$DAGSTER_HOME/run"
mkdir -p "$run"

start() {  # name, command...
  local name="$1"; shift
  if [[ -f "$run/$name.pid" ]] && kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$run/$name.pid"))"
    return
  fi
  setsid "$@" >"$run/$name.log" 2>&1 < /dev/null &
  echo $! >"$run/$name.pid"
}

stop() {  # name: SIGTERM to its process group, SIGKILL after 30 s
  local name="$1" pid
  [[ -f "$run/$name.pid" ]] || return 0
  pid="$(cat "$run/$name.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$run/$name.pid"
  echo "$name stopped"
}
