"""Model bundles for the score and memory stages, built with the platform's own classes.

A *trained* transformer bundle is used when one is passed (``--bundle``) or found. Otherwise the harness
builds a stand-in with ``pipelines.models``: the packaged MiniLM encoder **as shipped (not fine-tuned)**,
a ``ChurnHead`` trained on the frozen encoder's pooled features of a few hundred labelled customers, and
a calibrator fitted on them, saved with ``save_transformer_bundle`` and loaded with ``load_bundle``. Its
cost per customer is the real model's (same encoder, head, tokenizer, max_length, batching); its
accuracy is not, and the report says so. A LightGBM baseline bundle is made the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np

from benchmarks.common import PROJECT_ROOT, Context, require
from benchmarks.stages.data import ensure_data, labelled_cutoff, open_duckdb

logger = logging.getLogger("benchmarks.bundles")

FIT_ROWS = 384  # labelled customers the stand-in head / baseline are fitted on (never scored)
STANDIN_TARGET_LOSS = 0.45  # training BCE at which the stand-in head stops


def labelled_frame(ctx: Context, config, limit: int, seed: int = 0):
    """(frame, labels, source): features at the latest fully observed cutoff, at most ``limit`` rows."""
    build_features = require("pipelines.features", "build_features")
    ensure_data(ctx)
    cutoff = labelled_cutoff(config)
    with open_duckdb(ctx) as wh:
        frame = build_features(wh, config, [cutoff])
        if len(frame) == 0:
            raise RuntimeError(f"build_features returned no rows at {cutoff}")
        if "churned" in frame:
            labels, how = frame["churned"].to_numpy().astype(int), "churned column of build_features"
        else:
            labels, how = _sql_labels(wh, config, frame, cutoff), "churned recomputed in SQL"
    source = f"build_features at cutoff {cutoff} ({len(frame):,} population rows at scale {ctx.scale}); labels: {how}"
    if len(frame) > limit:
        keep = np.random.default_rng(seed).choice(len(frame), size=limit, replace=False)
        frame, labels = frame.iloc[keep].reset_index(drop=True), labels[keep]
    return frame, labels, source


def _sql_labels(wh, config, frame, cutoff) -> np.ndarray:
    end = cutoff + dt.timedelta(days=config.churn.horizon_days + 1)
    active = wh.query_df(
        wh.render(
            "SELECT DISTINCT customer_id FROM {orders} WHERE status = 'completed' "
            "AND ordered_at >= CAST(:start AS DATE) AND ordered_at < CAST(:end AS DATE)"
        ),
        {"start": cutoff.isoformat(), "end": end.isoformat()},
    )["customer_id"]
    return (~frame["customer_id"].isin(set(active))).astype(int).to_numpy()


def find_trained_bundle(ctx: Context) -> str | None:
    """``--bundle``, else the newest transformer bundle under data/models or mlflow/artifacts."""
    if ctx.bundle:
        return ctx.bundle
    try:
        read_bundle_meta = require("pipelines.models", "read_bundle_meta")
    except Exception:
        return None
    candidates = []
    for root in (PROJECT_ROOT / "data" / "models", PROJECT_ROOT / "mlflow" / "artifacts"):
        if root.exists():
            candidates += list(root.rglob("bundle.json"))
    for meta_path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            if read_bundle_meta(meta_path.parent).get("kind") == "transformer":
                return str(meta_path.parent)
        except Exception:
            continue
    return None


def standin_transformer_bundle(ctx: Context, config, fit_frame, fit_labels) -> Path:
    import torch

    models = require(
        "pipelines.models", "build_churn_model", "NumericScaler", "fit_calibrator", "save_transformer_bundle"
    )
    build_churn_model, NumericScaler, fit_calibrator, save_transformer_bundle = models  # noqa: N806
    numeric_feature_names = require("pipelines.features", "numeric_feature_names")
    from pipelines.models.batching import pad_batch, sorted_batches, tokenize_texts
    from pipelines.models.network import load_tokenizer, pool, resolve_encoder_path

    names = numeric_feature_names(config)
    torch.manual_seed(config.training.seed)
    encoder_path = resolve_encoder_path(config.model.encoder)
    model = build_churn_model(config.model, len(names), encoder_path).eval()
    tokenizer = load_tokenizer(encoder_path)
    scaler = NumericScaler.fit(fit_frame, names)
    ids = tokenize_texts(tokenizer, fit_frame["text_view"].tolist(), config.model.max_length)
    pooled = torch.zeros((len(ids), model.head.text_dim))
    with torch.inference_mode():
        for idx in sorted_batches([len(x) for x in ids], 64):
            input_ids, mask = pad_batch([ids[i] for i in idx], tokenizer.pad_token_id)
            hidden = model.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            pooled[idx] = pool(hidden, mask, model.pooling)
    numeric = torch.from_numpy(scaler.transform(fit_frame))
    y = torch.from_numpy(np.asarray(fit_labels, dtype=np.float32))
    head = model.head.train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.training.head_lr, weight_decay=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    # Stop early (loss ~0.45) instead of fitting 384 rows perfectly: an overfit head has huge logits and a
    # step-like calibrator that would exaggerate every |dp|; a head trained on real data is smoother.
    for _ in range(300):
        optimizer.zero_grad()
        loss = loss_fn(head(pooled, numeric), y)
        if float(loss.detach()) < STANDIN_TARGET_LOSS:
            break
        loss.backward()
        optimizer.step()
    loss = loss.detach()
    head.eval()
    with torch.inference_mode():
        raw = torch.sigmoid(head(pooled, numeric)).numpy()
    calibrator = fit_calibrator(fit_labels, raw, config.training.calibration)
    out = ctx.work_dir / f"standin-transformer-{ctx.scale}"
    path = save_transformer_bundle(
        out,
        model=model,
        tokenizer=tokenizer,
        scaler=scaler,
        calibrator=calibrator,
        threshold=0.5,
        max_length=config.model.max_length,
        encoder_source=config.model.encoder,
        fine_tune="frozen",
        extra={
            "benchmark_standin": f"head fitted on frozen packaged encoder, {len(fit_frame)} rows, final loss "
            f"{float(loss):.3f}; encoder NOT fine-tuned"
        },
    )
    logger.info("stand-in transformer bundle at %s (head loss %.3f)", path, float(loss))
    return Path(path)


def standin_baseline_bundle(ctx: Context, config, fit_frame, fit_labels) -> Path:
    import lightgbm as lgb

    fit_calibrator, save_baseline_bundle = require("pipelines.models", "fit_calibrator", "save_baseline_bundle")
    names = require("pipelines.features", "numeric_feature_names")(config)
    x = fit_frame[names].to_numpy(dtype=np.float64, na_value=np.nan)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 2, "min_data_in_leaf": 5},
        lgb.Dataset(x, np.asarray(fit_labels)),
        num_boost_round=100,
    )
    calibrator = fit_calibrator(fit_labels, booster.predict(x), config.training.calibration)
    out = ctx.work_dir / f"standin-baseline-{ctx.scale}"
    return Path(
        save_baseline_bundle(
            out,
            booster=booster,
            feature_names=names,
            calibrator=calibrator,
            threshold=0.5,
            extra={"benchmark_standin": f"100 rounds on {len(fit_frame)} rows"},
        )
    )
