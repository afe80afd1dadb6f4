#!/usr/bin/env bash
# Prepares AIRFLOW_HOME (default .airflow/) for `make demo` and `make airflow-ui`; idempotent.
#
# - airflow.cfg holds only this home's secrets. Every path (metadata DB, logs, DAGs, plugins) comes from
#   AIRFLOW_HOME and the AIRFLOW__CORE__*_FOLDER variables at run time, so a moved checkout uses its own files;
#   Airflow's own generated file would freeze today's absolute paths into it.
# - The simple auth manager's password file, with a generated password for the user `admin`.
# With --print-login it prints how to log in.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${AIRFLOW_HOME:-$ROOT/.airflow}"
PYTHON="$ROOT/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3
PASSWORDS="$HOME_DIR/simple_auth_manager_passwords.json.generated"
mkdir -p "$HOME_DIR"

if [ ! -f "$HOME_DIR/airflow.cfg" ]; then
  umask 077
  "$PYTHON" - "$HOME_DIR/airflow.cfg" <<'PY'
import base64
import os
import secrets
import sys

with open(sys.argv[1], "w") as f:
    f.write(
        "# Written by scripts/airflow_home.sh: secrets only. Paths come from AIRFLOW_HOME and the\n"
        "# AIRFLOW__CORE__DAGS_FOLDER / AIRFLOW__CORE__PLUGINS_FOLDER variables the Makefile sets.\n"
        "[core]\n"
        "load_examples = False\n"
        f"fernet_key = {base64.urlsafe_b64encode(os.urandom(32)).decode()}\n"
        "[api]\n"
        f"secret_key = {secrets.token_urlsafe(24)}\n"
        "[api_auth]\n"
        f"jwt_secret = {secrets.token_urlsafe(24)}\n"
    )
PY
fi

if [ ! -f "$PASSWORDS" ]; then
  umask 077
  "$PYTHON" -c 'import json, secrets, sys; open(sys.argv[1], "w").write(json.dumps({"admin": secrets.token_urlsafe(12)}) + "\n")' "$PASSWORDS"
fi

if [ "${1:-}" = "--print-login" ]; then
  password="$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("admin", "?"))' "$PASSWORDS")"
  echo "Airflow UI: http://localhost:${AIRFLOW__API__PORT:-8080}  user: admin  password: $password  (stored in ${PASSWORDS#"$ROOT"/})"
fi
