"""Review sentiment: a small head on the packaged encoder's embeddings, trained with the stars as weak labels.

Why stars as labels: they come with every review, in-domain and offline; 1-2 stars are negative, 4-5
positive, 3 is left out. Why a head and not the stars themselves: the text says what the stars do not ("5/5,
but probably my last order"); where text and stars disagree is a signal of its own. The head is a logistic
regression on mean-pooled, L2-normalised MiniLM vectors, stored as ``sentiment.safetensors`` (weights) and
``sentiment.json`` (encoder, held-out report), never pickled. Texts are masked
(:func:`pipelines.features.privacy.mask_identifiers`) before the tokenizer sees them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WEIGHTS_FILE = "sentiment.safetensors"
META_FILE = "sentiment.json"
MAX_LENGTH = 64  # review texts are capped at 200 characters in the text view; 64 tokens hold them


def weak_labels(ratings) -> np.ndarray:
    """1 for 4-5 stars, 0 for 1-2 stars, -1 (unused) for 3."""
    r = np.asarray(ratings, dtype=np.int64)
    return np.where(r >= 4, 1, np.where(r <= 2, 0, -1))


def encode_texts(
    texts: list[str],
    encoder_path: str,
    batch_size: int = 64,
    max_length: int = MAX_LENGTH,
    precision: str = "auto",
) -> np.ndarray:
    """Mean-pooled, L2-normalised encoder vectors of ``texts`` (masked first), returned as fp32.

    ``precision``: ``auto`` runs the encoder's weights in bf16 on CPUs with native bf16 matrix units (AMX,
    AVX512-BF16; the encoder pass is the job's whole cost and bf16 is several times faster there), else fp32.
    The head is a smooth logistic function of the pooled vector: bf16 moved the demo's review sentiments by
    less than 0.01 (benchmarks/results/*-sentiment.md). Training and scoring both encode through here.
    """
    import torch

    from pipelines.features.privacy import mask_identifiers
    from pipelines.models.batching import pad_batch, sorted_batches, tokenize_texts
    from pipelines.models.device import cpu_has_native_bf16
    from pipelines.models.network import load_encoder, load_tokenizer, pool

    tokenizer = load_tokenizer(encoder_path)
    encoder = load_encoder(encoder_path).eval()
    if precision == "bf16" or (precision == "auto" and cpu_has_native_bf16()):
        encoder = encoder.to(torch.bfloat16)
    ids = tokenize_texts(tokenizer, [mask_identifiers(t or "") for t in texts], max_length)
    pad = 0 if tokenizer.pad_token_id is None else int(tokenizer.pad_token_id)
    out = np.zeros((len(ids), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for idx in sorted_batches([len(x) for x in ids], batch_size):
            input_ids, mask = pad_batch([ids[i] for i in idx], pad)
            hidden = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            out[idx] = pool(hidden, mask, "mean").float().numpy()
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


@dataclass
class SentimentHead:
    coef: np.ndarray  # (d,)
    intercept: float
    encoder: str
    report: dict = field(default_factory=dict)

    @property
    def head_id(self) -> str:
        """sha256 prefix of the weights: which head computed a ``review_sentiment`` row (rows are reused by it)."""
        digest = hashlib.sha256(np.ascontiguousarray(self.coef, np.float64).tobytes())
        digest.update(np.float64(self.intercept).tobytes())
        return digest.hexdigest()[:16]

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """P(positive) per row."""
        return 1.0 / (1.0 + np.exp(-(np.asarray(embeddings, dtype=np.float64) @ self.coef + self.intercept)))

    def save(self, out_dir: str | Path) -> Path:
        from safetensors.numpy import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_file(
            {"coef": np.ascontiguousarray(self.coef, np.float64), "intercept": np.array([self.intercept])},
            str(out / WEIGHTS_FILE),
        )
        (out / META_FILE).write_text(json.dumps({"encoder": self.encoder, "report": self.report}, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, path: str | Path) -> SentimentHead:
        from safetensors.numpy import load_file

        root = Path(path)
        if not (root / WEIGHTS_FILE).is_file() or not (root / META_FILE).is_file():
            raise ValueError(f"{root} is not a sentiment head: needs {WEIGHTS_FILE} and {META_FILE}")
        arrays = load_file(str(root / WEIGHTS_FILE))
        meta = json.loads((root / META_FILE).read_text())
        return cls(arrays["coef"], float(arrays["intercept"][0]), meta["encoder"], meta.get("report", {}))


def train_sentiment(
    embeddings: np.ndarray, ratings, *, encoder: str, seed: int = 0, test_share: float = 0.2
) -> SentimentHead:
    """Fit on the 1-2 / 4-5 star reviews; report accuracy on a held-out share and where text and stars disagree."""
    y = weak_labels(ratings)
    rows = np.flatnonzero(y >= 0)
    if len(rows) < 20 or len(np.unique(y[rows])) < 2:
        raise ValueError(f"{len(rows)} reviews with 1-2 or 4-5 stars: too few (or one class only) for a sentiment head")
    rng = np.random.default_rng(seed)
    rng.shuffle(rows)
    n_test = max(int(len(rows) * test_share), 1)
    test, train = rows[:n_test], rows[n_test:]
    model = _logistic().fit(embeddings[train], y[train])
    head = SentimentHead(model.coef_[0].astype(np.float64), float(model.intercept_[0]), encoder)
    p_test = head.predict(embeddings[test])
    accuracy = float(((p_test >= 0.5).astype(int) == y[test]).mean())
    majority = float(max(y[test].mean(), 1 - y[test].mean()))
    head.report = {
        "train_reviews": len(train),
        "heldout_reviews": len(test),
        "heldout_accuracy": round(accuracy, 4),
        "heldout_majority_class_accuracy": round(majority, 4),
        "heldout_disagreement_share": round(1 - accuracy, 4),
        "positive_share": round(float(y[rows].mean()), 4),
    }
    return head


def _logistic():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")


def out_of_fold(embeddings: np.ndarray, ratings, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """P(positive) of each 1-2 / 4-5 star review from a head fitted on the other folds (NaN for 3 stars).

    Why: the head has seen its own training reviews; their in-sample sentiment agrees with the stars more
    often than it would for a new review, so features built from it would look cleaner in training than
    at scoring. Out-of-fold values are what a head that never saw the review says.
    """
    y = weak_labels(ratings)
    rows = np.flatnonzero(y >= 0)
    out = np.full(len(y), np.nan)
    order = np.random.default_rng(seed).permutation(rows)
    for part in np.array_split(order, max(2, min(folds, len(rows)))):
        rest = np.setdiff1d(rows, part)
        if len(part) == 0 or len(np.unique(y[rest])) < 2:
            continue
        out[part] = _logistic().fit(embeddings[rest], y[rest]).predict_proba(embeddings[part])[:, 1]
    return out
