"""The registered pyfunc model under ``mlflow.pyfunc.spark_udf`` scores as the batch scoring job does.

Real parts: generated data in DuckDB, its feature SQL, a small LightGBM bundle trained on those features and
logged as the project's pyfunc (models from code) to a temp MLflow registry with ``@champion``, the batch job
(``score_customers`` writing ``churn_scores``), and a local SparkSession running the UDF in Python workers.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines import tracking
from pipelines.contract import ID_COLUMN, LABEL_COLUMN, PROBABILITY_COLUMN
from pipelines.data.generator import generate_sample_data
from pipelines.features import build_features, iter_scoring_features, numeric_feature_names
from pipelines.warehouse import connect, open_warehouse

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*(type hints|integer column|input example).*:UserWarning"),
]

SCORE_DATE = dt.date(2025, 6, 1)


def _register_lightgbm_champion(config, tmp_path) -> str:
    """Train a small calibrated LightGBM on the warehouse's own features; log it as pyfunc; alias @champion."""
    import lightgbm as lgb
    from mlflow.models import infer_signature

    import mlflow
    from pipelines.models import fit_calibrator, save_baseline_bundle
    from pipelines.training.job import PYFUNC_MODEL_FILE, model_input

    with open_warehouse(config) as wh:
        train = build_features(wh, config, [dt.date(2025, 1, 1), dt.date(2025, 3, 1)])
    features = numeric_feature_names(config)
    params = {
        "objective": "binary",
        "num_leaves": 7,
        "min_data_in_leaf": 10,
        "verbose": -1,
        "seed": 0,
        "num_threads": 1,
    }
    booster = lgb.train(params, lgb.Dataset(train[features].to_numpy(), label=train[LABEL_COLUMN]), num_boost_round=20)
    calibrator = fit_calibrator(train[LABEL_COLUMN].to_numpy(), booster.predict(train[features].to_numpy()), "platt")
    bundle = save_baseline_bundle(
        tmp_path / "bundle", booster=booster, feature_names=features, calibrator=calibrator, threshold=0.5
    )
    example = model_input(train.head(3), features).reset_index(drop=True)
    name = config.registry.model_name
    with tracking.use_tracking(config) as client:
        # the configured experiment, whose artifact root is under tmp_path (the default one writes ./mlruns)
        with mlflow.start_run(experiment_id=tracking.ensure_experiment(config, client)):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_MODEL_FILE),
                artifacts={"bundle": str(bundle)},
                signature=infer_signature(example, pd.DataFrame({PROBABILITY_COLUMN: [0.5] * 3})),
            )
        version = mlflow.register_model(info.model_uri, name).version
        mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)
    return str(version)


def test_spark_udf_scores_equal_the_batch_job(config, tmp_path, spark_url):
    from pyspark.sql import functions as sf

    import mlflow
    from pipelines.scoring import score_customers

    config = config.with_overrides({"scoring": {"precision": "fp32"}})
    with open_warehouse(config) as wh:
        wh.init_schema()
        generate_sample_data(wh, customers=300, seed=3, start=dt.date(2024, 1, 1), end=SCORE_DATE)
    version = _register_lightgbm_champion(config, tmp_path)
    result = score_customers(config, SCORE_DATE, version, "manual__spark_udf")
    with open_warehouse(config) as wh:
        batch = wh.query_df(
            wh.render("SELECT customer_id, churn_probability FROM {churn_scores} WHERE score_date = :d"),
            {"d": SCORE_DATE},
        )
        features = pd.concat(list(iter_scoring_features(wh, config, SCORE_DATE, chunk_rows=1000)), ignore_index=True)
    assert result["rows"] == len(batch) == len(features) > 100

    spark = connect(spark_url(tmp_path / "spark")).spark
    uri = f"models:/{config.registry.model_name}@champion"
    with tracking.use_tracking(config):
        names = mlflow.models.get_model_info(uri).signature.inputs.input_names()
        udf = mlflow.pyfunc.spark_udf(spark, uri, result_type="double", env_manager="local")
    frame = spark.createDataFrame(features[names])
    scored = frame.select(ID_COLUMN, udf(sf.struct(*names)).alias("p")).toPandas()

    merged = batch.merge(scored, on=ID_COLUMN, how="outer", validate="one_to_one")
    assert len(merged) == len(batch)
    assert merged["churn_probability"].notna().all() and merged["p"].notna().all()
    np.testing.assert_allclose(merged["p"], merged["churn_probability"], rtol=0, atol=1e-12)
    assert merged["p"].std() > 0.01  # scores that vary, so equality means something
