"""Top-k products for the recommendation action: customer vector vs product text embeddings.

A product's vector is the packaged MiniLM encoder's mean-pooled embedding of its title, category and
description (computed once per run: the catalogue is small). A customer's vector is the mean of the
vectors of the products they bought, viewed or reviewed in ``recommendation_lookback_days``; the
recommendation is the ``recommendation_top_k`` most cosine-similar products they have not bought.
Customers without any such product get the most popular products they have not bought.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.retention.context import midnight

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

_TOUCHED_SQL = """
SELECT o.customer_id, i.product_id, 1 AS bought FROM {orders} o JOIN {order_items} i ON i.order_id = o.order_id
WHERE o.ordered_at >= :since AND o.ordered_at < :t AND i.product_id IS NOT NULL
UNION ALL
SELECT customer_id, product_id, 0 AS bought FROM {events}
WHERE event_type = 'view' AND event_at >= :since AND event_at < :t AND product_id IS NOT NULL
UNION ALL
SELECT customer_id, product_id, 0 AS bought FROM {reviews}
WHERE reviewed_at >= :since AND reviewed_at < :t AND product_id IS NOT NULL
"""


def encode_texts(texts: list[str], encoder: str) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence vectors from the configured encoder (CPU, inference only)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from pipelines.models.network import resolve_encoder_path

    path = resolve_encoder_path(encoder)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    out = []
    threads = torch.get_num_threads()
    # One thread: small batches of short texts gain nothing from more, and on a busy machine two threads ran
    # far slower than one (64 texts: 3.2 s vs 1.4 s at load 12 on 2 cores).
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for start in range(0, len(texts), 64):
                batch = tokenizer(
                    texts[start : start + 64], padding=True, truncation=True, max_length=48, return_tensors="pt"
                )
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy())
    finally:
        torch.set_num_threads(threads)
    vectors = np.concatenate(out) if out else np.zeros((0, 1))
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def product_vectors(texts: list[str], encoder: str, cache_dir: Path | None) -> np.ndarray:
    """``encode_texts`` cached on disk by the texts' and encoder's hash (plain .npy, loaded without pickle)."""
    if cache_dir is None:
        return encode_texts(texts, encoder)
    digest = hashlib.sha256("\x00".join([encoder, *texts]).encode()).hexdigest()[:20]
    path = cache_dir / f"product_vectors-{digest}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    vectors = encode_texts(texts, encoder).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.npy")
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(path)
    return vectors


def top_k_products(
    customer_ids: np.ndarray,
    touched: pd.DataFrame,
    product_ids: np.ndarray,
    vectors: np.ndarray,
    k: int,
) -> list[str]:
    """Comma-separated top-k unbought product ids per customer (cosine similarity; popularity fallback)."""
    index = {int(p): i for i, p in enumerate(product_ids)}
    touched = touched[touched["product_id"].isin(index)]
    popularity = touched["product_id"].value_counts()
    popular = [index[int(p)] for p in popularity.index] + [
        i for i in range(len(product_ids)) if product_ids[i] not in popularity.index
    ]
    by_customer = {cid: g for cid, g in touched.groupby("customer_id")}
    out = []
    for cid in customer_ids.tolist():
        group = by_customer.get(cid)
        if group is None or group.empty:
            picks = popular[:k]
        else:
            rows = group["product_id"].map(index).to_numpy()
            bought = set(group.loc[group["bought"] == 1, "product_id"].map(index).tolist())
            centre = vectors[rows].mean(axis=0)
            scores = vectors @ centre
            scores[list(bought)] = -np.inf
            picks = [int(i) for i in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[i])]
        out.append(",".join(str(int(product_ids[i])) for i in picks))
    return out


def recommend_products(
    wh: Warehouse,
    rows: pd.DataFrame,
    config: Config | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> pd.Series:
    """``recommended_products`` for the given assignment rows (customer_id, action_date)."""
    from pipelines.config import load_config

    config = config or load_config()
    action_date = pd.to_datetime(rows["action_date"].iloc[0]).date() if len(rows) else dt.date.today()
    products = wh.query_df(
        wh.render("SELECT product_id, title, category, description FROM {products} ORDER BY product_id")
    )
    if products.empty:
        return pd.Series([""] * len(rows), index=rows.index)
    texts = (products["title"] + " (" + products["category"] + "). " + products["description"].fillna("")).tolist()
    cache = config.resolve_path(config.dataset.output_dir).parent / "retention"
    vectors = embed(texts) if embed is not None else product_vectors(texts, config.model.encoder, cache)
    t = midnight(action_date)
    since = t - dt.timedelta(days=config.retention.recommendation_lookback_days)
    touched = wh.query_df(wh.render(_TOUCHED_SQL), {"since": since, "t": t})
    touched = touched[touched["customer_id"].isin(rows["customer_id"])]
    picks = top_k_products(
        rows["customer_id"].to_numpy(),
        touched,
        products["product_id"].to_numpy(),
        vectors,
        config.retention.recommendation_top_k,
    )
    return pd.Series(picks, index=rows.index)
