"""Per-customer attributions: which numeric features and which text items raise a customer's risk.

- **LightGBM**: the booster's own exact per-feature contributions (``pred_contrib``, TreeSHAP), in log-odds.
- **Transformer**: gradient x input at the head, over the standardized numeric features (0 is the training
  mean, so a feature at its mean contributes nothing), with the text embedding held fixed; in log-odds.
- **Hybrid**: the stacker's TreeSHAP contributions of the numeric features (the transformer-logit column is
  left to the text items, which explain what the encoder read).
- **Text items** (transformer and hybrid): the text view is a list of items (an order, a review, an abandoned
  cart); each of the newest ``max_items`` is dropped in turn and the customer rescored. The drop in
  calibrated probability is that item's effect; removal that *lowers* the risk marks an item that raises it.

Contributions in log-odds are made comparable with text effects (probabilities) by the local slope of the
logistic, ``p (1 - p)``: a first-order approximation of the probability change, documented as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.contract import TEXT_COLUMN

ITEM_SEPARATOR = " | "


@dataclass(frozen=True)
class NumericAttribution:
    feature_names: list[str]
    contributions: np.ndarray  # (n, n_features), log-odds


def numeric_contributions(predictor, frame: pd.DataFrame, pooled: np.ndarray | None = None) -> NumericAttribution:
    """Per-feature log-odds contributions of ``predictor`` for every row of ``frame``.

    ``pooled``: the rows' text embeddings (:func:`embeddings`) when the caller has them already (transformer).
    """
    names = list(predictor.feature_names)
    if len(frame) == 0:
        return NumericAttribution(names, np.zeros((0, len(names))))
    if callable(getattr(predictor, "contributions", None)):  # hybrid: TreeSHAP over [numeric, transformer logit]
        # the logit's share is the encoder's view of the whole history; text-item occlusion explains it
        return NumericAttribution(names, predictor.contributions(frame)[:, : len(names)])
    booster = getattr(predictor, "booster", None)
    if booster is not None:
        x = frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        contrib = np.asarray(
            booster.predict(x, pred_contrib=True, num_threads=getattr(predictor, "num_threads", 0)), dtype=np.float64
        )
        return NumericAttribution(names, contrib[:, : len(names)])
    if getattr(predictor, "kind", None) == "transformer" and hasattr(predictor, "model"):
        if pooled is None:
            pooled = embeddings(predictor, frame[TEXT_COLUMN].tolist())
        return NumericAttribution(names, _head_gradient_x_input(predictor, frame, pooled))
    raise TypeError(f"no attribution method for predictor {type(predictor).__name__}")


def _head_gradient_x_input(predictor, frame: pd.DataFrame, pooled: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """d logit / d z * z at the head (z = standardized numeric features), the text embedding fixed."""
    import torch

    head = predictor.model.head
    device = next(head.parameters()).device
    z_all = predictor.scaler.transform(frame)
    out = np.zeros(z_all.shape, dtype=np.float64)
    for start in range(0, len(z_all), batch_size):
        rows = slice(start, start + batch_size)
        text = torch.from_numpy(np.ascontiguousarray(pooled[rows], dtype=np.float32)).to(device)
        z = torch.from_numpy(z_all[rows]).to(device).requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(head(text, z).sum(), z)
        out[rows] = (grad * z).detach().cpu().double().numpy()
    return out


def embeddings(predictor, texts: list[str], batch_size: int | None = None) -> np.ndarray:
    """Pooled encoder vectors (fp32) of ``texts`` with the predictor's own encoder and tokenizer."""
    import torch

    batch_size = batch_size or getattr(predictor, "batch_size", None) or 32

    from pipelines.models.batching import RowProgress, pad_batch, sorted_batches, tokenize_texts

    model = predictor.model
    device = next(model.head.parameters()).device
    ids = tokenize_texts(predictor.tokenizer, texts, predictor.max_length)
    out = np.zeros((len(ids), model.head.text_dim), dtype=np.float32)
    progress = RowProgress("encoder embeddings", len(ids))
    with torch.inference_mode():
        for idx in sorted_batches([len(x) for x in ids], batch_size):
            input_ids, mask = pad_batch([ids[i] for i in idx], predictor.pad_id)
            out[idx] = model.embed(input_ids.to(device), mask.to(device)).float().cpu().numpy()
            progress.step(len(idx))
    return out


def split_items(text: str | None) -> list[str]:
    """The items of a text view, newest first."""
    return [item for item in (text or "").split(ITEM_SEPARATOR) if item]


@dataclass(frozen=True)
class TextEffect:
    row: int  # position in the frame
    item: int  # position in the text view (0 = newest)
    text: str
    effect: float  # probability with the item minus without it (> 0: the item raises the risk)


def text_item_effects(
    predictor, frame: pd.DataFrame, probabilities: np.ndarray, max_items: int = 8
) -> list[TextEffect]:
    """Occlusion over text items: every row's newest ``max_items`` items dropped one at a time, rescored at once."""
    variants: list[pd.Series] = []
    keys: list[tuple[int, int, str]] = []
    texts = frame[TEXT_COLUMN].tolist()
    for row, text in enumerate(texts):
        items = split_items(text)
        for k in range(min(len(items), max_items)):
            keys.append((row, k, items[k]))
            variants.append(ITEM_SEPARATOR.join(items[:k] + items[k + 1 :]))
    if not keys:
        return []
    rows = [key[0] for key in keys]
    occluded = frame.iloc[rows].copy()
    occluded[TEXT_COLUMN] = variants
    p_without = np.asarray(predictor.predict_proba(occluded.reset_index(drop=True)), dtype=np.float64).reshape(-1)
    p = np.asarray(probabilities, dtype=np.float64)[rows]
    return [
        TextEffect(row, item, text, float(effect))
        for (row, item, text), effect in zip(keys, p - p_without, strict=True)
    ]


def logit_to_probability_scale(contributions: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Log-odds contributions times the logistic's slope p (1 - p): their first-order probability change."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1, 1)
    return contributions * p * (1.0 - p)
