"""Customer segments: mini-batch k-means on PCA(encoder embedding) + standardized behaviour, stored without pickles.

Why this shape:

- **Fitted once, at training time, applied with ``predict``**: a customer's segment only changes when
  their data does, never because the clusters were refitted; scoring is a nearest-centroid lookup.
- **Stored as arrays** (``segments.safetensors``: scaler, PCA and centroids) plus ``segments.json``
  (feature names, segment names, profile), validated on load: no sklearn object is ever unpickled.
- **Hysteresis** (``switch_margin``): with a previous segment, a customer moves only when another centroid is
  clearly closer (distance below ``(1 - margin)`` x the previous one's), so the small day-to-day drift of windowed
  features (one more day since the last order) does not flip customers that sit near a boundary.
- **Names** from the behaviour features whose centroid value deviates most from the population (z-scores):
  "high value, fading", "new, one-time buyers". Embedding dimensions have no words; they shape the clusters only.

Behaviour features are ``sign(x) log1p(|x|)`` before standardizing: counts and amounts are heavy-tailed, and a
handful of big spenders would otherwise be segments of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SEGMENTS_FILE = "segments.safetensors"
SEGMENTS_META = "segments.json"
FORMAT_VERSION = 1
Z_CLIP = 5.0

# feature -> (word when the centroid is high, word when low); the first two strong deviations name a segment
WORDS: dict[str, tuple[str, str]] = {
    "revenue_365d": ("high value", "low value"),
    "avg_order_value_365d": ("big baskets", "small baskets"),
    "orders_365d": ("frequent buyers", "one-time buyers"),
    "orders_90d": ("active buyers", "quiet lately"),
    "days_since_last_order": ("lapsing", "recent buyers"),
    "orders_trend_90d": ("growing", "fading"),
    "revenue_trend_90d": ("spending more", "spending less"),
    "tenure_days": ("long-standing", "new"),
    "sessions_90d": ("frequent visitors", "rare visitors"),
    "searches_90d": ("searchers", "few searches"),
    "support_contacts_90d": ("support-heavy", "no support needs"),
    "cart_abandonment_rate_90d": ("cart abandoners", "checkout finishers"),
    "return_rate_365d": ("returners", "keepers"),
    "cancellation_rate_365d": ("cancellers", "no cancellations"),
    "low_rating_share_365d": ("unhappy reviewers", "happy reviewers"),
    "reviews_365d": ("reviewers", "silent"),
    "categories_365d": ("broad baskets", "single-category"),
}
NAME_MIN_Z = 0.35  # a deviation weaker than this does not name a segment


class SegmentModelError(ValueError):
    """A stored segment model is incomplete or inconsistent."""


@dataclass
class SegmentModel:
    feature_names: list[str]
    mean: np.ndarray  # behaviour transform mean / std
    std: np.ndarray
    pca_mean: np.ndarray  # (d,) embedding mean; empty without embeddings
    pca_components: np.ndarray  # (k, d)
    pca_scale: np.ndarray  # (k,) std of each component on the fit rows
    embedding_weight: float
    centroids: np.ndarray  # (n_segments, k + n_features)
    names: list[str]
    switch_margin: float = 0.1
    profile: list[dict] = field(default_factory=list)

    @property
    def uses_embedding(self) -> bool:
        return self.pca_components.size > 0 and self.embedding_weight > 0

    def _behaviour(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame[self.feature_names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=0.0)
        x = np.sign(x) * np.log1p(np.abs(np.nan_to_num(x)))
        return np.clip((x - self.mean) / self.std, -Z_CLIP, Z_CLIP)

    def _embedding(self, embeddings: np.ndarray | None, n: int) -> np.ndarray:
        if not self.uses_embedding:
            return np.zeros((n, 0))
        if embeddings is None:
            raise SegmentModelError("this segment model was fitted with encoder embeddings; none were given")
        z = (np.asarray(embeddings, dtype=np.float64) - self.pca_mean) @ self.pca_components.T / self.pca_scale
        return self.embedding_weight * np.clip(z, -Z_CLIP, Z_CLIP)

    def transform(self, frame: pd.DataFrame, embeddings: np.ndarray | None = None) -> np.ndarray:
        return np.hstack([self._embedding(embeddings, len(frame)), self._behaviour(frame)])

    def distances(self, frame: pd.DataFrame, embeddings: np.ndarray | None = None) -> np.ndarray:
        x = self.transform(frame, embeddings)
        return np.sqrt(((x[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2))

    def predict(
        self, frame: pd.DataFrame, embeddings: np.ndarray | None = None, previous: np.ndarray | None = None
    ) -> np.ndarray:
        """Segment id per row; ``previous`` (-1 = none) keeps a customer unless another centroid is clearly closer."""
        d = self.distances(frame, embeddings)
        best = np.argmin(d, axis=1)
        if previous is None:
            return best.astype(np.int32)
        previous = np.asarray(previous, dtype=np.int64)
        known = (previous >= 0) & (previous < len(self.centroids))
        keep = np.zeros(len(best), dtype=bool)
        rows = np.flatnonzero(known)
        keep[rows] = d[rows, best[rows]] >= (1.0 - self.switch_margin) * d[rows, previous[rows]]
        return np.where(keep, previous, best).astype(np.int32)

    # -- storage ---------------------------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        from safetensors.numpy import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {
            "mean": self.mean,
            "std": self.std,
            "pca_mean": self.pca_mean,
            "pca_components": self.pca_components,
            "pca_scale": self.pca_scale,
            "centroids": self.centroids,
        }
        save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}, str(out / SEGMENTS_FILE))
        meta = {
            "format_version": FORMAT_VERSION,
            "feature_names": self.feature_names,
            "names": self.names,
            "embedding_weight": self.embedding_weight,
            "switch_margin": self.switch_margin,
            "profile": self.profile,
        }
        (out / SEGMENTS_META).write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
        return out

    @classmethod
    def load(cls, path: str | Path) -> SegmentModel:
        from safetensors.numpy import load_file

        root = Path(path)
        tensors, meta_path = root / SEGMENTS_FILE, root / SEGMENTS_META
        if not tensors.is_file() or not meta_path.is_file():
            raise SegmentModelError(f"{root} is not a segment model: needs {SEGMENTS_FILE} and {SEGMENTS_META}")
        meta = json.loads(meta_path.read_text())
        arrays = load_file(str(tensors))
        missing = {"mean", "std", "pca_mean", "pca_components", "pca_scale", "centroids"} - set(arrays)
        if missing or meta.get("format_version") != FORMAT_VERSION:
            raise SegmentModelError(f"{root}: missing arrays {sorted(missing)} or unknown format_version")
        model = cls(
            feature_names=list(meta["feature_names"]),
            names=list(meta["names"]),
            embedding_weight=float(meta["embedding_weight"]),
            switch_margin=float(meta.get("switch_margin", 0.1)),
            profile=list(meta.get("profile", [])),
            **arrays,
        )
        n_features, k = len(model.feature_names), model.pca_components.shape[0] if model.pca_components.ndim == 2 else 0
        if model.mean.shape != (n_features,) or model.std.shape != (n_features,):
            raise SegmentModelError(f"{root}: scaler arrays do not match {n_features} features")
        if model.centroids.ndim != 2 or model.centroids.shape[1] != k + n_features:
            raise SegmentModelError(
                f"{root}: centroids have shape {model.centroids.shape}, expected (n, {k + n_features})"
            )
        if len(model.names) != len(model.centroids):
            raise SegmentModelError(f"{root}: {len(model.names)} names for {len(model.centroids)} segments")
        return model


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def fit_segments(
    frame: pd.DataFrame,
    feature_names: list[str],
    *,
    embeddings: np.ndarray | None = None,
    n_segments: int = 6,
    pca_components: int = 8,
    embedding_weight: float = 0.5,
    switch_margin: float = 0.1,
    seed: int = 0,
) -> SegmentModel:
    """Fit the scaler, PCA (when ``embeddings``) and MiniBatchKMeans; name the segments from their centroids."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import PCA

    x = frame[feature_names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=0.0)
    x = np.sign(x) * np.log1p(np.abs(np.nan_to_num(x)))
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    model = SegmentModel(
        feature_names=list(feature_names),
        mean=mean,
        std=std,
        pca_mean=np.zeros(0),
        pca_components=np.zeros((0, 0)),
        pca_scale=np.zeros(0),
        embedding_weight=float(embedding_weight),
        centroids=np.zeros((0, 0)),
        names=[],
        switch_margin=float(switch_margin),
    )
    if embeddings is not None and embedding_weight > 0:
        emb = np.asarray(embeddings, dtype=np.float64)
        k = int(min(pca_components, emb.shape[1], max(len(emb) - 1, 1)))
        pca = PCA(n_components=k, random_state=seed).fit(emb)
        model.pca_mean, model.pca_components = pca.mean_, pca.components_
        model.pca_scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
    z = model.transform(frame, embeddings if model.uses_embedding else None)
    n = int(min(n_segments, len(frame)))
    kmeans = MiniBatchKMeans(n_clusters=n, random_state=seed, n_init=5, batch_size=max(1024, 4 * n)).fit(z)
    model.centroids = kmeans.cluster_centers_
    model.names = segment_names(model)
    return model


def segment_names(model: SegmentModel) -> list[str]:
    """A short name per centroid from its two most deviating behaviour features (unique, in words)."""
    k = model.centroids.shape[1] - len(model.feature_names)
    behaviour = model.centroids[:, k:]
    names: list[str] = []
    for row in behaviour:
        words = []
        for j in np.argsort(-np.abs(row)):
            feature = model.feature_names[j]
            if abs(row[j]) < NAME_MIN_Z or len(words) == 2:
                break
            if feature in WORDS:
                word = WORDS[feature][0 if row[j] > 0 else 1]
                if word not in words:
                    words.append(word)
        names.append(", ".join(words) or "typical customers")
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def segment_profile(
    model: SegmentModel, segments: np.ndarray, frame: pd.DataFrame, labels: np.ndarray | None = None
) -> pd.DataFrame:
    """Size, share, churn rate (when labelled) and mean 365-day revenue per segment."""
    rows = []
    for sid, name in enumerate(model.names):
        mask = segments == sid
        row = {"segment_id": sid, "segment_name": name, "customers": int(mask.sum()), "share": float(mask.mean())}
        if labels is not None:
            row["churn_rate"] = float(np.asarray(labels)[mask].mean()) if mask.any() else float("nan")
        for column in ("revenue_365d", "orders_365d", "days_since_last_order"):
            if column in frame.columns:
                row[f"mean_{column}"] = float(frame.loc[mask, column].mean()) if mask.any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
