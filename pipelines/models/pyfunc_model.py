"""MLflow "models from code" definition of the churn model (logged as ``python_model=<this file>``).

MLflow copies this file into the logged model and executes it at load time, so nothing is pickled:
the model directory holds this source file, the MLmodel metadata and the bundle directory under
``artifacts/`` (``bundle.json`` + safetensors or a LightGBM text model; pyfunc artifact key "bundle").
``pipelines`` must be importable where the model is loaded (it is an installed package of this project).

Input: a DataFrame with ``customer_id``, the bundle's numeric features and ``text_view``.
Output: a DataFrame with one column ``churn_probability`` (calibrated), aligned with the input rows.
"""

from __future__ import annotations

from mlflow.pyfunc import PythonModel

import mlflow
from pipelines.contract import PROBABILITY_COLUMN

# load_bundle options a caller may pass as model_config={...} to mlflow.pyfunc.load_model.
_BUNDLE_OPTIONS = ("precision", "batch_size", "device", "num_threads", "check_rows", "tolerance")


class ChurnRiskModel(PythonModel):
    """Wraps a ``pipelines.models`` bundle; predicts calibrated churn probabilities."""

    def load_context(self, context):
        from pipelines.models import load_bundle

        config = dict(getattr(context, "model_config", None) or {})
        options = {key: config[key] for key in _BUNDLE_OPTIONS if config.get(key) is not None}
        self.predictor = load_bundle(context.artifacts["bundle"], **options)

    def predict(self, context, model_input, params=None):
        import numpy as np
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        probabilities = np.asarray(self.predictor.predict_proba(frame), dtype="float64").reshape(-1)
        return pd.DataFrame({PROBABILITY_COLUMN: probabilities}, index=frame.index)


mlflow.models.set_model(ChurnRiskModel())
