#!/usr/bin/env bash
# Runs once, when the postgres volume is empty (docker-entrypoint-initdb.d).
# One server, three databases with their own owners:
#   airflow   - Airflow metadata (POSTGRES_DB, created by the image itself)
#   warehouse - the churn warehouse (raw tables, churn_scores, monitoring tables)
#   mlflow    - MLflow tracking/registry backend store
set -euo pipefail

create_db() {
  local db="$1" user="$2" password="$3"
  echo "creating database ${db} owned by ${user}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<-SQL
	DO \$\$
	BEGIN
	  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${user}') THEN
	    CREATE ROLE ${user} LOGIN PASSWORD '${password}';
	  END IF;
	END
	\$\$;
	SELECT 'CREATE DATABASE ${db} OWNER ${user}'
	WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${db}')\gexec
	GRANT ALL PRIVILEGES ON DATABASE ${db} TO ${user};
SQL
}

create_db "${WAREHOUSE_DB:-warehouse}" "${WAREHOUSE_USER:-churn}" "${WAREHOUSE_PASSWORD:-churn}"
create_db "${MLFLOW_DB:-mlflow}" "${MLFLOW_USER:-mlflow}" "${MLFLOW_PASSWORD:-mlflow}"
