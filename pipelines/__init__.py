"""Churn and retention ML platform: the library every DAG task calls (no Airflow imports here)."""
