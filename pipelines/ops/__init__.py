"""Backend of the Airflow plugin's operator page (no Airflow imports): what the page shows and how."""
