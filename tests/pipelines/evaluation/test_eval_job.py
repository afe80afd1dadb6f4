"""The evaluation job's own logic: one encoder pass per split for the transformer and the hybrid."""

import numpy as np


def test_transformer_and_hybrid_share_one_encoder_pass_per_split():
    from types import SimpleNamespace

    import pandas as pd

    from pipelines.evaluation.job import _share_transformer_logits

    calls = []

    def make_transformer(files):
        def predict_logits(frame):
            calls.append(id(frame))
            return np.arange(len(frame), dtype=float)

        return SimpleNamespace(kind="transformer", metadata={"files": files}, predict_logits=predict_logits)

    memo = {}
    alone = make_transformer({"encoder/model.safetensors": {"sha256": "a"}})
    hybrid = SimpleNamespace(
        kind="hybrid", transformer=make_transformer({"encoder/model.safetensors": {"sha256": "a"}})
    )
    other = make_transformer({"encoder/model.safetensors": {"sha256": "b"}})  # different weights: its own pass
    for predictor in (alone, hybrid, other):
        _share_transformer_logits(predictor, memo)
    val, test = pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [3]})
    for split in (val, test):
        alone.predict_logits(split)
        np.testing.assert_array_equal(hybrid.transformer.predict_logits(split), alone.predict_logits(split))
        other.predict_logits(split)
    assert calls == [id(val), id(val), id(test), id(test)]  # alone + other per split; the hybrid reused alone's
