"""The data contract: every warehouse table, its columns, types and keys, in one place.

Why here and not in SQL files: DDL for DuckDB and Postgres, the Great Expectations suites, the
importers and the README's schema reference are all derived from these definitions, so they cannot
disagree. Every timestamp is ``TIMESTAMPTZ`` and holds UTC.

Why one file over 400 lines: it is the single source of every table; one place is the point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every ``churn`` command (and of the DAG tasks' CLI twins); one table, in the README."""

    OK = 0
    FAILED = 1  # an unexpected error (a bug): one line, the traceback with `churn --debug`
    CONFIG = 2  # bad configuration, bad command-line arguments, or validation could not start
    VALIDATION = 3  # the data broke a Great Expectations rule: nothing downstream ran
    IMPORT = 4  # an import file has bad rows: nothing was written
    HISTORY = 5  # the warehouse holds too little history for the requested training cutoffs
    DATASET = 6  # a training-set file does not match its manifest (tampered or partial)
    REGISTRY = 7  # the MLflow registry is unreachable, or has no champion / no such version
    SCORING = 8  # scoring cannot run (no population, bad model bundle, non-finite features)
    MONITORING = 9  # monitoring cannot run (no scores for the date, no reference)
    WAREHOUSE = 10  # the warehouse is unreachable or a table does not match the contract
    FILE = 11  # a file or folder the command reads or writes cannot be accessed (missing, permissions, disk full)
    RETENTION = 12  # retention cannot run (no scores for the date, no matured outcomes, unknown action)
    INTERRUPTED = 130  # Ctrl-C


# Column names every layer shares (features, training sets, bundles, scores).
ID_COLUMN = "customer_id"
CUTOFF_COLUMN = "cutoff_date"
TEXT_COLUMN = "text_view"
LABEL_COLUMN = "churned"
PROBABILITY_COLUMN = "churn_probability"
SEGMENT_COLUMNS = ("tenure_band", "acquisition_channel")

# Logical type -> SQL type. Both DuckDB and Postgres accept these spellings.
SQL_TYPES = {
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "double": "DOUBLE PRECISION",
    "text": "TEXT",
    "timestamptz": "TIMESTAMPTZ",
    "date": "DATE",
    "boolean": "BOOLEAN",
}

ORDER_STATUSES = ("completed", "cancelled", "returned")
EVENT_TYPES = ("view", "search", "add_to_cart", "checkout", "support_contact")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = False
    description: str = ""
    allowed_values: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        if self.type not in SQL_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type}")


@dataclass(frozen=True)
class ForeignKey:
    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    time_column: str | None = None  # the column freshness and "not after as-of" rules look at
    raw: bool = True  # raw input (validated by GX) vs. written by the platform
    partition_column: str | None = None  # outputs replaced one partition at a time
    indexes: tuple[tuple[str, ...], ...] = field(default=())
    # Stored as one physical partition per partition_column value where the engine has them (PostgreSQL:
    # PARTITION BY LIST), so replacing a partition is a swap of a freshly loaded table, not delete + insert.
    # Worth it for large daily outputs; a table per value only costs for small ones (the monitoring tables).
    native_partitions: bool = False

    def __post_init__(self) -> None:
        if self.native_partitions:
            if self.partition_column is None or self.partition_column not in self.primary_key:
                raise ValueError(f"table {self.name}: native partitions need a partition_column in the primary key")
            if self.column(self.partition_column).type != "date":
                raise ValueError(
                    f"table {self.name}: native partitions are one per date; {self.partition_column} is not a date"
                )

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name} has no column {name}")


CUSTOMERS = Table(
    name="customers",
    description="One row per customer: who they are and how they came.",
    columns=(
        Column("customer_id", "bigint", description="Customer key."),
        Column("signup_at", "timestamptz", description="When the account was created (UTC)."),
        Column("country", "text", description="ISO 3166-1 alpha-2 country code."),
        Column(
            "acquisition_channel",
            "text",
            description="organic, paid_search, social, referral, email, affiliate, unknown.",
        ),
        Column(
            "birth_year", "integer", nullable=True, description="Optional demographic.", min_value=1900, max_value=2020
        ),
        Column("gender", "text", nullable=True, description="Optional demographic (f, m, x)."),
    ),
    primary_key=("customer_id",),
    time_column="signup_at",
    indexes=(("signup_at",),),
)

PRODUCTS = Table(
    name="products",
    description="Product catalogue.",
    columns=(
        Column("product_id", "bigint", description="Product key."),
        Column("title", "text", description="Product title."),
        Column("category", "text", description="Top-level category."),
        Column("price", "double", description="List price.", min_value=0),
        Column("description", "text", nullable=True, description="Free-text description."),
    ),
    primary_key=("product_id",),
)

ORDERS = Table(
    name="orders",
    description="One row per order; status says whether it was kept.",
    columns=(
        Column("order_id", "bigint", description="Order key."),
        Column("customer_id", "bigint", description="Who ordered."),
        Column("ordered_at", "timestamptz", description="When the order was placed (UTC)."),
        Column("status", "text", description="completed, cancelled or returned.", allowed_values=ORDER_STATUSES),
        Column("total_amount", "double", description="Order value in the shop currency.", min_value=0),
    ),
    primary_key=("order_id",),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    time_column="ordered_at",
    indexes=(("customer_id", "ordered_at"),),
)

ORDER_ITEMS = Table(
    name="order_items",
    description="Lines of an order.",
    columns=(
        Column("order_id", "bigint", description="Order the line belongs to."),
        Column("line_number", "integer", description="1-based line within the order.", min_value=1),
        Column("product_id", "bigint", nullable=True, description="Product, when known."),
        Column("category", "text", nullable=True, description="Product category at order time."),
        Column("quantity", "integer", description="Units.", min_value=1),
        Column("unit_price", "double", description="Price paid per unit.", min_value=0),
    ),
    primary_key=("order_id", "line_number"),
    foreign_keys=(ForeignKey("order_id", "orders", "order_id"), ForeignKey("product_id", "products", "product_id")),
)

EVENTS = Table(
    name="events",
    description="Clickstream: what customers did on the site.",
    columns=(
        Column("event_id", "bigint", description="Event key."),
        Column("customer_id", "bigint", description="Who acted."),
        Column("session_id", "text", description="Web/app session."),
        Column(
            "event_type",
            "text",
            description="view, search, add_to_cart, checkout, support_contact.",
            allowed_values=EVENT_TYPES,
        ),
        Column("product_id", "bigint", nullable=True, description="Product involved, if any."),
        Column("event_at", "timestamptz", description="When (UTC)."),
    ),
    primary_key=("event_id",),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    time_column="event_at",
    indexes=(("customer_id", "event_at"),),
)

REVIEWS = Table(
    name="reviews",
    description="Product reviews with free text.",
    columns=(
        Column("review_id", "bigint", description="Review key."),
        Column("customer_id", "bigint", description="Author."),
        Column("product_id", "bigint", nullable=True, description="Reviewed product."),
        Column("rating", "integer", description="Stars, 1 to 5.", min_value=1, max_value=5),
        Column("review_text", "text", nullable=True, description="Free text."),
        Column("reviewed_at", "timestamptz", description="When (UTC)."),
    ),
    primary_key=("review_id",),
    foreign_keys=(ForeignKey("customer_id", "customers", "customer_id"),),
    time_column="reviewed_at",
    indexes=(("customer_id", "reviewed_at"),),
)

CHURN_SCORES = Table(
    name="churn_scores",
    description="Daily churn risk of every active customer; one partition per score_date.",
    columns=(
        Column("customer_id", "bigint", description="Customer scored."),
        Column("score_date", "date", description="As-of date of the features (the run's logical date)."),
        Column(
            "churn_probability",
            "double",
            description="Calibrated P(no completed order in the next horizon days).",
            min_value=0,
            max_value=1,
        ),
        Column("risk_tier", "text", description="Tier from configured probability thresholds (low/medium/high)."),
        Column("model_name", "text", description="Registered model name."),
        Column("model_version", "text", description="Registered model version that produced the score."),
        Column("run_id", "text", description="Scoring run id (Airflow run id or CLI run id)."),
        Column("scored_at", "timestamptz", description="When the score was written (UTC)."),
        # Added after the first release: nullable, so older warehouses gain them with ADD COLUMN (init_schema).
        Column(
            "expected_revenue",
            "double",
            nullable=True,
            description="Revenue expected in the next horizon days if the customer stays: the daily completed "
            "revenue of the longest feature window times horizon_days.",
            min_value=0,
        ),
        Column(
            "value_at_risk",
            "double",
            nullable=True,
            description="churn_probability x expected_revenue: the revenue this customer's churn would cost.",
            min_value=0,
        ),
        Column(
            "percentile_rank",
            "double",
            nullable=True,
            description="Share of the day's scored customers with a lower churn_probability (0 = lowest, 1 = highest).",
            min_value=0,
            max_value=1,
        ),
        Column(
            "probability_change",
            "double",
            nullable=True,
            description="churn_probability minus the customer's score on the previous score date (null when the "
            "customer was not scored then).",
        ),
        Column(
            "tier_rank",
            "integer",
            nullable=True,
            description="Position of risk_tier from the lowest tier (0 = low, 1 = medium, 2 = high): ORDER BY tier_rank, "
            "not the tier's name.",
        ),
    ),
    # score_date first: the key's index also serves the partition delete, so no second index is maintained.
    primary_key=("score_date", "customer_id"),
    raw=False,
    partition_column="score_date",
    native_partitions=True,
)

CHURN_SCORE_REASONS = Table(
    name="churn_score_reasons",
    description="Why a customer is at risk: the top reasons that raise the score, written with the scores.",
    columns=(
        Column("score_date", "date", description="Score date (the churn_scores partition these reasons explain)."),
        Column("customer_id", "bigint", description="Customer."),
        Column("rank", "integer", description="1 = the reason that raises the risk most.", min_value=1),
        Column(
            "reason_code",
            "text",
            description="Stable code of the phrase (recency, frequency_drop, spend_drop, low_ratings, support, "
            "cart_abandonment, returns, cancellations, engagement_drop, review_text, order_text, cart_text, ...).",
        ),
        Column("feature", "text", description="Numeric feature (or text item kind) the reason stands for."),
        Column("value", "double", nullable=True, description="The feature's value for this customer (null for text)."),
        Column(
            "contribution",
            "double",
            description="How much it raises the risk: log-odds contribution (LightGBM pred_contrib, gradient x input) "
            "or the probability drop when the text item is removed.",
        ),
        Column("text", "text", description='The reason in words, e.g. "no order in 74 days; usually every 21".'),
    ),
    primary_key=("score_date", "customer_id", "rank"),
    raw=False,
    partition_column="score_date",
    native_partitions=True,
)

CUSTOMER_SEGMENTS = Table(
    name="customer_segments",
    description="Which kind of customer: segment of every scored customer (k-means fitted with the model).",
    columns=(
        Column("score_date", "date", description="Score date."),
        Column("customer_id", "bigint", description="Customer."),
        Column("segment_id", "integer", description="Cluster index in the model's segment model.", min_value=0),
        Column(
            "segment_name",
            "text",
            description='Name from the most deviating centroid features, e.g. "high value, fading".',
        ),
    ),
    primary_key=("score_date", "customer_id"),
    raw=False,
    partition_column="score_date",
    native_partitions=True,
)

REVIEW_SENTIMENT = Table(
    name="review_sentiment",
    description="Sentiment of every review's text (a head on the packaged encoder, trained with stars as weak labels).",
    columns=(
        Column("review_id", "bigint", description="Review."),
        Column("customer_id", "bigint", description="Author."),
        Column(
            "reviewed_at",
            "timestamptz",
            description="When the review was written (UTC): features use it before the cutoff.",
        ),
        Column("rating", "integer", description="Stars, 1 to 5.", min_value=1, max_value=5),
        Column(
            "sentiment",
            "double",
            nullable=True,
            description="P(the text is positive), 0 to 1; null for a review without text.",
            min_value=0,
            max_value=1,
        ),
        Column(
            "disagrees",
            "boolean",
            nullable=True,
            description="Text and stars disagree (positive text with 1-2 stars or negative text with 4-5); null for 3 stars.",
        ),
        Column("computed_at", "timestamptz", description="When the sentiment was computed (UTC)."),
        Column(
            "head_id",
            "text",
            nullable=True,
            description="Which sentiment head computed it (sha256 prefix of its weights; the champion's at scoring).",
        ),
    ),
    primary_key=("review_id",),
    raw=False,
)

MONITORING_DRIFT = Table(
    name="monitoring_drift",
    description="Drift of scoring inputs and outputs against the training reference, one partition per score_date.",
    columns=(
        Column("score_date", "date", description="Scoring date monitored."),
        Column("model_version", "text", description="Model whose reference was used."),
        Column(
            "metric",
            "text",
            description="feature_drift, missing_share, share_drifted_features, prediction_drift, realized_pr_auc, "
            "reference, retrain, retrain_reason, reference_rows/current_rows/scored_rows.",
        ),
        Column(
            "feature",
            "text",
            description="Feature name; '__dataset__' for dataset-level metrics, "
            "'churn_probability' for prediction drift, reason_1.. for retrain_reason rows (part of the key, "
            "so never null).",
        ),
        Column("value", "double", description="Drift score (test statistic or distance)."),
        Column("threshold", "double", nullable=True, description="Threshold it was compared with."),
        Column("drifted", "boolean", description="Whether the value crossed the threshold."),
        Column("report_path", "text", nullable=True, description="HTML report with the detail."),
        Column("computed_at", "timestamptz", description="When (UTC)."),
        Column(
            "role",
            "text",
            nullable=True,
            description="monitored (counts toward retraining), excluded (reported only, see note), decision "
            "(a row of the verdict: share_drifted_features, prediction_drift, realized_pr_auc, reference, "
            "retrain, retrain_reason); NULL for row counts.",
        ),
        Column(
            "note",
            "text",
            nullable=True,
            description="Why an excluded feature is excluded; the verdict's one-line headline on the retrain "
            "row (value 1 = retrain); each retrain reason on a retrain_reason row; what was compared on the "
            "reference row.",
        ),
    ),
    primary_key=("score_date", "metric", "feature"),
    raw=False,
    partition_column="score_date",
)

MONITORING_PERFORMANCE = Table(
    name="monitoring_performance",
    description="Realized performance of past scores once their labels matured (backtest).",
    columns=(
        Column("score_date", "date", description="Date the scores were made."),
        Column("evaluated_on", "date", description="Monitoring run date that evaluated them."),
        Column("model_version", "text", description="Model that made the scores."),
        Column("metric", "text", description="pr_auc, roc_auc, brier, calibration_error, churn_rate, n."),
        Column("value", "double", description="Metric value."),
        Column("computed_at", "timestamptz", description="When (UTC)."),
    ),
    primary_key=("score_date", "evaluated_on", "metric"),
    raw=False,
    partition_column="evaluated_on",
)

CONTACT_CONSENT = Table(
    name="contact_consent",
    description="Contact consent per customer and channel (input to retention; a customer without a row gets "
    "retention.consent_default).",
    columns=(
        Column("customer_id", "bigint", description="Customer."),
        Column("channel", "text", description="email, sms, phone, push or mail."),
        Column("consented", "boolean", description="Whether the customer may be contacted on the channel."),
        Column("updated_at", "timestamptz", description="When the consent was given or withdrawn (UTC)."),
    ),
    primary_key=("customer_id", "channel"),
    raw=False,
)

RETENTION_GROUPS = ("holdout", "explore", "policy")

RETENTION_ACTIONS = Table(
    name="retention_actions",
    description="One retention decision per scored customer per action_date, with its logged propensity.",
    columns=(
        Column("customer_id", "bigint", description="Customer."),
        Column("action_date", "date", description="Day of the decision (the churn_scores score_date it used)."),
        Column("action", "text", description="Action taken: 'none' or a retention.actions name."),
        Column(
            "group",
            "text",
            description="holdout (permanent global control, never contacted), explore (action drawn uniformly from "
            "the eligible ones) or policy (the policy's choice).",
            allowed_values=RETENTION_GROUPS,
        ),
        Column(
            "propensity",
            "double",
            description="P(action | customer) under the randomised assignment (1 for the holdout and for "
            "customers outside the budget).",
            min_value=0,
            max_value=1,
        ),
        Column("policy_action", "text", description="What the policy alone would have chosen."),
        Column("eligible_actions", "text", description="Comma-separated actions the business rules allowed."),
        Column("risk_tier", "text", description="The customer's risk tier that day."),
        Column("churn_probability", "double", description="The churn score the decision used."),
        Column(
            "expected_uplift",
            "double",
            nullable=True,
            description="Estimated retention uplift of the action vs none (null under the cold-start rules).",
        ),
        Column(
            "expected_net_value",
            "double",
            nullable=True,
            description="Estimated net value vs none: uplift x margin - cost (null under the cold-start rules).",
        ),
        Column("policy_version", "text", description="'rules' (cold start) or the registered policy version."),
        Column(
            "recommended_products",
            "text",
            nullable=True,
            description="Comma-separated product ids (recommendation action only), best first.",
        ),
        Column("reason", "text", description="Why this action (rule, model, exploration, budget, holdout)."),
        Column("assigned_at", "timestamptz", description="When the row was written (UTC)."),
    ),
    primary_key=("action_date", "customer_id"),
    raw=False,
    partition_column="action_date",
    indexes=(("customer_id", "action_date"),),
)

RETENTION_OUTCOMES = Table(
    name="retention_outcomes",
    description="What happened after each assignment, once its horizon passed.",
    columns=(
        Column("customer_id", "bigint", description="Customer."),
        Column("action_date", "date", description="Decision day (joins retention_actions)."),
        Column("action", "text", description="Action taken."),
        Column("group", "text", description="holdout, explore or policy.", allowed_values=RETENTION_GROUPS),
        Column("retained", "boolean", description="A completed order in [action_date, action_date + horizon)."),
        Column("revenue", "double", description="Completed order revenue in that window.", min_value=0),
        Column("margin", "double", description="revenue x margin_rate."),
        Column("cost", "double", description="Contact cost plus redemption cost (when retained)."),
        Column("net_value", "double", description="margin - cost."),
        Column("matured_on", "date", description="Run date that measured it (>= action_date + horizon)."),
    ),
    primary_key=("action_date", "customer_id"),
    raw=False,
    partition_column="action_date",
)

RETENTION_EFFECTS = Table(
    name="retention_effects",
    description="Measured effect per action_date and action against the holdout, and the policy value by estimator.",
    columns=(
        Column("action_date", "date", description="Decision day measured."),
        Column(
            "kind",
            "text",
            description="action_effect (an action vs the holdout), policy_value (a policy's net value per customer "
            "off-policy), uplift_model (Qini/AUUC of the uplift model).",
        ),
        Column("action", "text", description="Action, or the policy name for policy_value rows."),
        Column("estimator", "text", description="cuped_ipw for effects; ips, snips, dr, on_policy for policies."),
        Column("n", "integer", description="Customers behind the figure."),
        Column("retention_rate", "double", nullable=True, description="Retention of customers given the action."),
        Column("holdout_rate", "double", nullable=True, description="Retention of the comparable holdout."),
        Column("uplift", "double", nullable=True, description="Retention uplift (or the policy's value)."),
        Column("ci_low", "double", nullable=True, description="95% confidence interval, lower end."),
        Column("ci_high", "double", nullable=True, description="95% confidence interval, upper end."),
        Column("revenue_uplift", "double", nullable=True, description="Revenue per customer vs the holdout."),
        Column("net_value", "double", nullable=True, description="Net value per customer vs the holdout."),
        Column("computed_at", "timestamptz", description="When (UTC)."),
    ),
    primary_key=("action_date", "kind", "action", "estimator"),
    raw=False,
    partition_column="action_date",
)

RETENTION_TABLES: tuple[Table, ...] = (CONTACT_CONSENT, RETENTION_ACTIONS, RETENTION_OUTCOMES, RETENTION_EFFECTS)

RAW_TABLES: tuple[Table, ...] = (CUSTOMERS, PRODUCTS, ORDERS, ORDER_ITEMS, EVENTS, REVIEWS)
OUTPUT_TABLES: tuple[Table, ...] = (
    CHURN_SCORES,
    CHURN_SCORE_REASONS,
    CUSTOMER_SEGMENTS,
    REVIEW_SENTIMENT,
    MONITORING_DRIFT,
    MONITORING_PERFORMANCE,
    *RETENTION_TABLES,
)
ALL_TABLES: tuple[Table, ...] = RAW_TABLES + OUTPUT_TABLES
TABLES = {t.name: t for t in ALL_TABLES}

LATEST_SCORES_VIEW = "churn_scores_latest"
# monitoring_drift.feature of dataset-level rows (the column is part of the key, so it cannot be null).
DATASET_LEVEL_FEATURE = "__dataset__"


def get_table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; contract tables: {', '.join(TABLES)}") from None
