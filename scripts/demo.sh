#!/usr/bin/env bash
# `make demo`: the whole platform end to end on embedded defaults (DuckDB warehouse, SQLite MLflow
# store, SQLite Airflow metadata in .airflow/), with the real Airflow DAGs run by `airflow dags test`:
#
#   reset warehouse -> generate sample data -> churn_training -> churn_scoring -> churn_monitoring
#   -> churn_retention -> one simulated campaign (simulate, measure, learn)
#
# Environment: CHURN_CONFIG (default configs/demo.yaml), DEMO_AS_OF (training date, default 2026-01-01),
# DEMO_SCORE_DATE (scoring/monitoring date, default = DEMO_AS_OF), DEMO_SKIP_GENERATE=1 to keep the data.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"

export CHURN_CONFIG="${CHURN_CONFIG:-configs/demo.yaml}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$ROOT/plugins}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# A failing task in the demo should stop the demo now, not wait for retries with backoff.
export CHURN_TASK_RETRIES="${CHURN_TASK_RETRIES:-0}"

AS_OF="${DEMO_AS_OF:-2026-01-01}"
SCORE_DATE="${DEMO_SCORE_DATE:-$AS_OF}"
LOG_DIR="$ROOT/reports/demo"
mkdir -p "$LOG_DIR" "$AIRFLOW_HOME"

declare -a STAGES=()
DEMO_START=$SECONDS

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

stage() {  # stage NAME COMMAND...: run quietly into its log with a progress line every 15 s; stop on failure
  local name="$1"; shift
  local log="$LOG_DIR/${name// /_}.log" start=$SECONDS status=0 next=15
  bold "$name"
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ $((SECONDS - start)) -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
      printf '   %4ds  %s\n' "$((SECONDS - start))" "$(progress "$log")"
      next=$((next + 15))
    fi
  done
  wait "$pid" || status=$?
  local took=$((SECONDS - start))
  STAGES+=("$(printf '%-28s %4d s' "$name" "$took")")
  if [ "$status" -ne 0 ]; then
    echo "FAILED: $name (exit $status) after ${took}s; the end of its log ($log):" >&2
    grep -E "ERROR|Error|Traceback|FAILED" "$log" | tail -n 15 >&2 || tail -n 25 "$log" >&2
    print_timings
    exit "$status"
  fi
  echo "   done in ${took}s (log: ${log#"$ROOT"/})"
}

progress() {  # the latest thing a stage's log says it is doing: the Airflow task, an epoch, a step
  local what
  what="$(grep -oE "epoch [0-9]+[^,;]{0,50}|Running task [a-z_]+|task_id=[a-z_]+|training set[^,;]{0,40}|scoring [^,;]{0,40}" "$1" | tail -n 1)"
  echo "${what:-working}"
}

results() {  # results KIND VALUE: what the stage produced (training sets, candidates, tiers, drift verdict)
  echo
  "$BIN/python" "$ROOT/scripts/demo_report.py" "$@" 2>/dev/null || echo "   (could not read the $1 results; see the stage log)"
}

print_timings() {
  bold "stage timings"
  printf '%s\n' "${STAGES[@]}"
  printf '%-28s %4d s\n' "total" "$((SECONDS - DEMO_START))"
}

dag_test() {  # dag_test DAG_ID DATE [CONF]: run the whole DAG in-process; fail unless the run succeeded
  local dag_id="$1" date="$2" conf="${3:-}" out status
  out="$(mktemp)"
  local -a args=(dags test "$dag_id" "$date")
  [ -n "$conf" ] && args+=(-c "$conf")
  set +e
  "$BIN/airflow" "${args[@]}" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  set -e
  # `airflow dags test` exits non-zero when the run fails; also insist on the success line.
  if [ "$status" -ne 0 ] || ! grep -qE "DagRun Finished: dag_id=$dag_id.*state=success" "$out"; then
    rm -f "$out"; echo "$dag_id: the DAG run did not succeed" >&2; return 1
  fi
  rm -f "$out"
}

generate_data() {
  "$BIN/churn" generate
}

bold "churn platform demo: config $CHURN_CONFIG, training as of $AS_OF, scoring $SCORE_DATE"
[ -x "$BIN/airflow" ] || { echo "no $BIN/airflow: run 'make venv' first" >&2; exit 1; }

stage "init warehouse (reset)" "$BIN/churn" init-warehouse --reset --yes
if [ "${DEMO_SKIP_GENERATE:-0}" != "1" ]; then
  stage "generate sample data" generate_data
fi
bash "$ROOT/scripts/airflow_home.sh"  # secrets-only airflow.cfg (no absolute paths) + the admin password
stage "airflow db migrate" "$BIN/airflow" db migrate
# the stamp scripts/airflow_ui.sh reads: `make airflow-ui` after the demo skips its own migration
"$BIN/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))' >"$AIRFLOW_HOME/.db-migrated"
stage "dag churn_training" dag_test churn_training "$AS_OF"
results training "$AS_OF"
stage "dag churn_scoring" dag_test churn_scoring "$SCORE_DATE"
results scoring "$SCORE_DATE"
stage "dag churn_monitoring" dag_test churn_monitoring "$SCORE_DATE"
results monitoring "$SCORE_DATE"
# Retention: the DAG assigns actions (cold start: rules + exploration, permanent holdout); the simulator plays
# out the next horizon_days; then outcomes, effects vs the holdout, policy values and the learned policy.
stage "dag churn_retention" dag_test churn_retention "$SCORE_DATE"
MATURED="$("$BIN/python" -c "import datetime as d; from pipelines.config import load_config; print(d.date.fromisoformat('$SCORE_DATE') + d.timedelta(days=load_config().retention.horizon_days))")"
stage "simulate campaign" "$BIN/churn" retention simulate --date "$SCORE_DATE"
stage "measure retention" "$BIN/churn" retention measure --as-of "$MATURED"
stage "learn retention policy" "$BIN/churn" retention learn --as-of "$MATURED"

bold "top churn risks (churn_scores_latest)"
QUERY="SELECT customer_id, score_date, round(churn_probability, 3) AS p_churn, risk_tier, model_version
FROM churn_scores_latest ORDER BY churn_probability DESC LIMIT 10"
"$BIN/python" - "$QUERY" <<'PY'
import sys

from pipelines.config import load_config

url = load_config().warehouse_url
if url.startswith("duckdb:///"):
    import duckdb

    con = duckdb.connect(url[len("duckdb:///"):], read_only=True)
    con.sql(sys.argv[1]).show()
else:  # a Postgres warehouse (CHURN_WAREHOUSE_URL): same query through the warehouse layer
    from pipelines.warehouse import open_warehouse

    with open_warehouse(load_config()) as wh:
        print(wh.query_df(sys.argv[1].replace("churn_scores_latest", wh.tables["churn_scores_latest"])).to_string())
PY

bold "retention on $SCORE_DATE: uplift per action vs the holdout, policy values (net value per customer)"
"$BIN/churn" retention effects --date "$SCORE_DATE" 2>/dev/null

print_timings

REPORT="$("$BIN/python" -c "from pipelines.config import load_config; c = load_config(); print(c.resolve_path(c.monitoring.reports_dir) / 'drift' / '$SCORE_DATE.html')")"
WAREHOUSE="$("$BIN/python" -c "from pipelines.config import load_config; print(load_config().warehouse_url)")"
bold "where to look"
cat <<EOF
  Scores:        $WAREHOUSE
                 .venv/bin/python -c "import duckdb; print(duckdb.connect('${WAREHOUSE#duckdb:///}', read_only=True).sql('SELECT * FROM churn_scores_latest ORDER BY churn_probability DESC LIMIT 10'))"
  Drift report:  $REPORT
  Retention:     $("$BIN/python" -c "from pipelines.config import load_config; c = load_config(); print(c.resolve_path(c.retention.reports_dir) / '$SCORE_DATE.html')")
  Run summary:   $(ls -t reports/runs/*.md 2>/dev/null | head -1)
  MLflow UI:     make mlflow-ui      (http://localhost:5000: runs, metrics, registered model @champion)
  Airflow UI:    make airflow-ui     (http://localhost:8080: the three DAGs, paused, and the "Churn model" page)
                 $(bash "$ROOT/scripts/airflow_home.sh" --print-login)
  Stage logs:    ${LOG_DIR#"$ROOT"/}/
EOF
