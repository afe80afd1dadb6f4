#!/usr/bin/env bash
# `make airflow-ui`: Airflow's components for these DAGs on this machine, the UI first; Ctrl-C stops them all.
#
# Why not `airflow standalone` (what this replaced): it checks the metadata DB in its own process (an Airflow
# import plus a migration check, 10-20 s on two busy cores) before it starts anything, then starts four
# components at once that compete for the CPU with the API server, the one the user is waiting for. Here:
# - `airflow db migrate` runs only when this home's SQLite DB was not yet migrated by this Airflow version (a
#   stamp next to it; always with another metadata DB);
# - the API server and the DAG processor (which fills the DAG list) start at once at normal priority, the
#   scheduler niced, the triggerer (none of our tasks defers) niced once the UI listens.
# Settings as `airflow standalone` forces them: LocalExecutor, the simple auth manager.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.venv/bin"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__CORE__AUTH_MANAGER="${AIRFLOW__CORE__AUTH_MANAGER:-airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager}"
export PATH="$BIN:$PATH"  # Airflow starts task runners by running `airflow` from PATH
HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
PORT="${AIRFLOW__API__PORT:-8080}"
started=$SECONDS

bash "$ROOT/scripts/airflow_home.sh" --print-login
version="$("$BIN/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))')"
stamp="$AIRFLOW_HOME/.db-migrated"
if [ -n "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" ] || [ ! -f "$AIRFLOW_HOME/airflow.db" ] ||
  [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
  echo "airflow-ui: migrating the metadata DB in $AIRFLOW_HOME (once per Airflow version) ..."
  if ! "$BIN/airflow" db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1; then
    tail -20 "$AIRFLOW_HOME/db-migrate.log" >&2
    exit 1
  fi
  [ -n "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" ] || echo "$version" >"$stamp"
fi

pids=()
names=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT
launch() {  # launch NAME NICENESS airflow-subcommand...
  local name=$1 niceness=$2
  shift 2
  nice -n "$niceness" "$BIN/airflow" "$@" > >(sed -u "s/^/$name | /") 2>&1 &
  pids+=($!)
  names+=("$name")
}

launch api-server 0 api-server --host "$HOST" --port "$PORT"
launch dag-processor 0 dag-processor
launch scheduler 10 scheduler
until (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
  for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null || { echo "airflow-ui: ${names[$i]} exited before the UI listened" >&2; exit 1; }
  done
  sleep 0.5
done
echo "airflow-ui: the UI listens on http://$HOST:$PORT ($((SECONDS - started)) s after the command); DAGs start paused"
launch triggerer 10 triggerer
wait -n "${pids[@]}" || true
echo "airflow-ui: a component exited; stopping the others" >&2
