# MLflow tracking server with a PostgreSQL backend store (the official image lacks the driver).
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir "psycopg2-binary==2.9.13"
