"""Targets the results are compared with (2 CPU cores unless marked GPU) and how each is judged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GIB = 1024.0  # MiB


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    stage: str
    metric: str
    op: str  # ">=" or "<="
    threshold: float
    unit: str
    min_customers: int = 0  # measured only at this scale or above
    gpu: bool = False
    max_dp_metric: str | None = None  # also require this |dp| metric <= 0.01

    @property
    def required(self) -> str:
        extra = " and max abs dp <= 0.01" if self.max_dp_metric else ""
        return f"{self.op} {_fmt(self.threshold)} {self.unit}{extra}"


TARGETS: tuple[Target, ...] = (
    Target(
        "features_1m",
        "feature + text-view build, 1M customers (~20M orders+events), DuckDB",
        "features",
        "duckdb_build_seconds",
        "<=",
        60,
        "s",
        min_customers=1_000_000,
    ),
    Target(
        "writeback_duckdb",
        "write-back into churn_scores, DuckDB",
        "writeback",
        "duckdb_rows_per_s",
        ">=",
        1_000_000,
        "rows/s",
    ),
    Target(
        "writeback_postgres",
        "write-back into churn_scores, Postgres",
        "writeback",
        "postgres_rows_per_s",
        ">=",
        200_000,
        "rows/s",
    ),
    Target(
        "cpu_scoring",
        "CPU scoring, default encoder, 128 tokens, default path (scoring.precision: auto), within 0.01 of unoptimized",
        "score",
        "default_customers_per_s",
        ">=",
        150,
        "customers/s",
        max_dp_metric="default_max_abs_dp",
    ),
    Target(
        "scoring_rss_1m",
        "scoring 1M customers, peak RSS (transformer: estimated from a LightGBM run + its "
        "extra memory; 3 GB read as 3 GiB)",
        "memory",
        "peak_rss_transformer_estimate_mb",
        "<=",
        3 * GIB,
        "MiB",
        min_customers=1_000_000,
    ),
    Target(
        "retention_uplift_ci",
        "retention, simulator: share of actions whose 95% uplift CI covers the true effect",
        "retention",
        "uplift_ci_coverage",
        ">=",
        1.0,
        "share",
        min_customers=10_000,
    ),
    Target(
        "retention_policy_vs_oracle",
        "retention, simulator: learned policy's true net value / the oracle's, next date's customers",
        "retention",
        "share_of_oracle_fitted_q",
        ">=",
        0.8,
        "share",
        min_customers=10_000,
    ),
    # measured by the gpu stage (scripts/gpu_check.sh): the trained bundle's encoder, the scoring job's predictor
    Target(
        "gpu_finetune",
        "fine-tuning on one H100, bf16",
        "gpu",
        "finetune_samples_per_s",
        ">=",
        5_000,
        "samples/s",
        gpu=True,
    ),
    Target(
        "gpu_scoring",
        "scoring on one H100, 128 tokens, bf16",
        "gpu",
        "score_bf16_customers_per_s",
        ">=",
        30_000,
        "customers/s",
        gpu=True,
        max_dp_metric="score_bf16_max_abs_dp",
    ),
)


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def judge(target: Target, run: dict[str, Any], has_gpu: bool) -> dict[str, Any]:
    """{'status': 'met' | 'missed' | 'not measured here', 'measured': str, 'detail': str}"""
    stages = run.get("stages", {})
    stage = stages.get(target.stage)
    customers = run.get("customers", 0)
    out: dict[str, Any] = {
        "key": target.key,
        "target": target.label,
        "required": target.required,
        "measured": "",
        "status": "not measured here",
        "detail": "",
    }
    if target.gpu and not has_gpu:
        out["detail"] = "no GPU on this machine"
        return out
    if not stage:
        out["detail"] = f"stage {target.stage} not run"
        return out
    if stage.get("status") != "ok":
        out["detail"] = f"stage {target.stage} {stage.get('status')}: {stage.get('reason', '')}"[:160]
        return out
    metric = stage.get("metrics", {}).get(target.metric)
    if metric is None:
        reason = "; ".join(stage.get("notes", []))[:160]
        out["detail"] = f"{target.metric} not measured" + (f" ({reason})" if reason else "")
        return out
    value = metric["value"]
    out["value"] = value
    out["measured"] = f"{_fmt(value)} {target.unit}"
    if customers < target.min_customers:
        detail = f"scale {run.get('scale')} only: {_fmt(value)} {target.unit} at {customers:,} customers"
        if target.key == "features_1m":
            oe = stage.get("info", {}).get("orders_plus_events") or 0
            by_rows = value * 20_000_000 / oe if oe else float("nan")
            by_customers = value * target.min_customers / max(customers, 1)
            detail = (
                f"{_fmt(value)} s at {customers:,} customers with {oe:,} orders+events; scaled linearly to "
                f"~20M orders+events: ~{_fmt(by_rows)} s; to 1M customers of this generator "
                f"(~{oe * target.min_customers / max(customers, 1) / 1e6:,.0f}M orders+events): ~{_fmt(by_customers)} s "
                f"({'within' if by_customers <= target.threshold else 'over'} target)"
            )
        if target.key == "scoring_rss_1m":
            detail += (
                "; peak RSS grows with customers (DuckDB working memory of the feature query), see the "
                "extrapolation section"
            )
        out["detail"] = detail
        return out
    ok = value >= target.threshold if target.op == ">=" else value <= target.threshold
    dp_note = ""
    if target.max_dp_metric:
        dp = stage["metrics"].get(target.max_dp_metric, {}).get("value")
        if dp is not None:
            dp_note = f"max abs dp {dp:.4f}"
            if dp > 0.01:
                ok = False
                dp_note += " (> 0.01)"
    if ok:
        out["status"] = "met"
        margin = value / target.threshold if target.op == ">=" else target.threshold / value if value else float("inf")
        out["detail"] = f"{margin:.2f}x the target" + (f"; {dp_note}" if dp_note else "")
    else:
        out["status"] = "missed"
        if target.op == ">=":
            short = (1 - value / target.threshold) * 100
            out["detail"] = f"{short:.0f}% short ({target.threshold / value:.1f}x needed)" if value else "zero"
        else:
            out["detail"] = f"{(value / target.threshold - 1) * 100:.0f}% over"
        if dp_note:
            out["detail"] += f"; {dp_note}"
    if run.get("scale_note"):
        out["detail"] += f"; {run['scale_note']}"
    return out
