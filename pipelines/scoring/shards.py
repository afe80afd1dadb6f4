"""Sharded scoring: plan customer-id shards, score each one into staging, publish the day in one step.

Why this shape (the ``churn_scoring`` DAG maps :func:`score_shard` over :func:`plan_shards`, so
Celery or Kubernetes workers, the GPU queue included, score shards in parallel):

- **Staging keyed by (run, score_date, shard).** A shard writes its ``churn_scores``,
  ``churn_score_reasons`` and ``customer_segments`` rows to ``<table>_staging`` (the contract's
  columns plus ``stage_run`` and ``shard``) and a row in ``churn_score_shards`` (its id range and row
  count), all in one transaction. A retried shard deletes and rewrites only its own rows; a shard that
  dies mid-way leaves nothing (its transaction never started or was rolled back).
- **One publish.** :func:`publish_shards` checks that every planned shard finished with the planned
  number of customers, then replaces the three output tables' ``score_date`` partitions from staging
  in one step (``Warehouse.replace_partitions``, as the single-task path does): readers see the old
  day or the new one in all three, never new scores beside old reasons. Before that check passes
  nothing is published.
- **Same rows as one task.** Features are per customer and the BG/NBD fit always sees the whole
  population, so a shard's rows equal the unsharded run's; the one population-wide column,
  ``percentile_rank``, is recomputed over the whole day at publish.

- **No staging left behind.** A run that never publishes (a shard failed for good, the run was
  abandoned) keeps its staging rows until :func:`sweep_staging` drops them: every publish sweeps the
  runs superseded on its day and any run whose last shard finished ``scoring.staging_retention_days``
  ago; ``churn sweep-staging`` does it by hand.

DuckDB allows one writer per file, so its shards run one after another; Postgres runs them in parallel.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.contract import CHURN_SCORE_REASONS, CHURN_SCORES, CUSTOMER_SEGMENTS, ID_COLUMN, Column, Table
from pipelines.dates import as_date, utc_midnight
from pipelines.scoring.batch import (
    ScoringError,
    _check_version,
    _score_stream,
    _validate_scores,
    assign_risk_tiers,
    build_scores_table,
    check_scoring_inputs,
    config_for_model,
)
from pipelines.scoring.reasons import ScoreDetails, append_columns, percentile_rank
from pipelines.warehouse.base import WarehouseError, fault_point, quote_identifier

if TYPE_CHECKING:
    import pyarrow as pa

    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

OUTPUTS = (CHURN_SCORES, CHURN_SCORE_REASONS, CUSTOMER_SEGMENTS)  # published together, in one step
STAGE_COLUMNS = (Column("stage_run", "text", description="Run that staged the row"), Column("shard", "integer"))


def _staging(table: Table) -> Table:
    """``<table>_staging``: the contract's columns plus the (run, shard) key; no partitions."""
    return dataclasses.replace(
        table,
        name=f"{table.name}_staging",
        description=f"Shard staging rows of {table.name} (cleared by publish)",
        columns=(*table.columns, *STAGE_COLUMNS),
        primary_key=("stage_run", "shard", *table.primary_key),
        foreign_keys=(),
        partition_column=None,
        native_partitions=False,
        indexes=(),
        raw=False,
    )


STAGING = {table.name: _staging(table) for table in OUTPUTS}
SHARD_MANIFEST = Table(
    name="churn_score_shards",
    description="One row per finished scoring shard (run, score_date, shard); cleared by publish",
    columns=(
        Column("stage_run", "text"),
        Column("score_date", "date"),
        Column("shard", "integer"),
        Column("id_lo", "bigint"),
        Column("id_hi", "bigint"),
        Column("staged_rows", "bigint"),
        Column("finished_at", "timestamptz"),
    ),
    primary_key=("stage_run", "score_date", "shard"),
    raw=False,
)
STAGING_TABLES = (*STAGING.values(), SHARD_MANIFEST)


class ShardError(ScoringError):
    """A shard is missing, failed or holds the wrong number of rows; nothing was published."""


def plan_shards(config: Config, score_date: dt.date | str) -> list[dict[str, Any]]:
    """Customer-id ranges of about ``scoring.shard_customers`` population customers each.

    One grouped count query (row numbers over the population's ids): each shard is
    ``{"shard", "id_lo", "id_hi", "customers"}`` with inclusive id bounds. An empty population plans
    no shard, and :func:`publish_shards` then refuses to publish an empty day.
    """
    from pipelines.warehouse import open_warehouse

    score_date = as_date(score_date)
    per = config.scoring.shard_customers
    cutoff = utc_midnight(score_date)
    start = cutoff - dt.timedelta(days=config.churn.population_days)
    sql = (
        "SELECT shard, MIN(customer_id) AS id_lo, MAX(customer_id) AS id_hi, COUNT(*) AS customers FROM ("
        " SELECT customer_id, CAST(FLOOR((ROW_NUMBER() OVER (ORDER BY customer_id) - 1)"
        " / CAST(:per AS DOUBLE PRECISION)) AS BIGINT) AS shard FROM ("
        "  SELECT DISTINCT customer_id FROM {orders}"
        "  WHERE status = 'completed' AND ordered_at >= :start AND ordered_at < :cutoff) ids) numbered "
        "GROUP BY shard ORDER BY shard"
    )
    with open_warehouse(config) as wh:
        rows = wh.query_arrow(wh.render(sql), {"per": per, "start": start, "cutoff": cutoff}).to_pylist()
    plan = [
        {
            "shard": int(r["shard"]),
            "id_lo": int(r["id_lo"]),
            "id_hi": int(r["id_hi"]),
            "customers": int(r["customers"]),
        }
        for r in rows
    ]
    logger.info(
        "planned %d shard(s) of <= %d customers for %s (%d customers)",
        len(plan),
        per,
        score_date,
        sum(s["customers"] for s in plan),
    )
    return plan


def score_shard(
    config: Config, score_date: dt.date | str, model_version: str, run_id: str, shard: dict[str, Any]
) -> dict[str, Any]:
    """Score one planned shard and replace its rows in staging (one transaction). Publishes nothing.

    Returns ``{"shard", "rows", "seconds", "customers_per_second"}``; raises :class:`ScoringError`
    (nothing staged for this shard) when the scores fail validation.
    """
    from pipelines.registry import load_model_version
    from pipelines.warehouse import open_warehouse

    score_date = as_date(score_date)
    model_version = _check_version(model_version)
    if not run_id:
        raise ValueError("run_id is required (the Airflow run id or a CLI run id)")
    index, id_range, expected = int(shard["shard"]), (int(shard["id_lo"]), int(shard["id_hi"])), int(shard["customers"])
    started = time.perf_counter()
    check_scoring_inputs(config)
    with open_warehouse(config, config.scoring.duckdb_memory_limit) as wh:
        wh.init_schema((*OUTPUTS, *STAGING_TABLES))
        predictor = load_model_version(config, model_version, **config.scoring.predictor_options())
        config = config_for_model(config, predictor, model_version)
        logger.info("scoring shard %d (customer_id %d..%d) of %s, run %s", index, *id_range, score_date, run_id)
        details = ScoreDetails.for_run(wh, config, predictor, score_date, model_version)
        ids, probs = _score_stream(wh, config, predictor, score_date, expected, started, details.add, id_range)
        _validate_scores(ids, probs, score_date, expected)
        tiers = assign_risk_tiers(probs, config.scoring.risk_tiers)
        scores = build_scores_table(ids, probs, tiers, score_date, config.registry.model_name, model_version, run_id)
        scores = append_columns(scores, details.score_columns(wh, ids, probs, tiers))
        tables = {CHURN_SCORES.name: scores, CHURN_SCORE_REASONS.name: details.reasons_table()}
        if details.segments is not None:
            tables[CUSTOMER_SEGMENTS.name] = details.segments.table(score_date)
        _stage(wh, run_id, score_date, index, id_range, tables)
    seconds = time.perf_counter() - started
    logger.info("staged shard %d: %d scores for %s in %.1f s", index, len(ids), score_date, seconds)
    return {
        "shard": index,
        "rows": len(ids),
        "seconds": round(seconds, 3),
        "customers_per_second": round(len(ids) / seconds, 1) if seconds > 0 else None,
    }


def _stage(
    wh: Warehouse,
    run_id: str,
    score_date: dt.date,
    index: int,
    id_range: tuple[int, int],
    tables: dict[str, pa.Table],
) -> None:
    """Replace this (run, score_date, shard)'s staging rows and mark it finished, all or nothing."""
    import pyarrow as pa

    key = {"run": run_id, "d": score_date, "shard": index}
    with wh.transaction():
        for staging in STAGING_TABLES:
            wh.execute(
                f"DELETE FROM {wh.qualified(staging.name)} WHERE stage_run = :run AND score_date = :d AND shard = :shard",
                key,
            )
        for name, data in tables.items():
            staging = STAGING[name]
            arrow = wh._to_arrow(dataclasses.replace(staging, columns=staging.columns[: -len(STAGE_COLUMNS)]), data)
            arrow = arrow.append_column("stage_run", pa.array([run_id] * arrow.num_rows, pa.string()))
            arrow = arrow.append_column("shard", pa.array(np.full(arrow.num_rows, index, np.int32)))
            wh._load_arrow(staging.name, wh._to_arrow(staging, arrow))
            fault_point("load")  # the crash tests kill a shard here: half its tables loaded, nothing committed
        manifest = {
            "stage_run": [run_id],
            "score_date": [score_date],
            "shard": [index],
            "id_lo": [id_range[0]],
            "id_hi": [id_range[1]],
            "staged_rows": [tables[CHURN_SCORES.name].num_rows],
            "finished_at": [dt.datetime.now(dt.UTC)],
        }
        wh._load_arrow(SHARD_MANIFEST.name, wh._to_arrow(SHARD_MANIFEST, pa.table(manifest)))


def publish_shards(
    config: Config, score_date: dt.date | str, run_id: str, plan: list[dict[str, Any]]
) -> dict[str, Any]:
    """Replace the ``score_date`` partitions from the run's staging, only when every planned shard is complete.

    Raises :class:`ShardError` naming the shard (nothing published, the old day intact) when a planned
    shard did not finish, staged a different number of customers than planned, or staging holds a
    shard the plan does not. Clears the run's staging rows of that day after publishing.
    """
    from pipelines.warehouse import open_warehouse

    score_date = as_date(score_date)
    if not plan:
        raise ShardError(
            f"churn_scores: no shard planned for score_date {score_date} (the population is empty); nothing was published"
        )
    started, published_at = time.perf_counter(), dt.datetime.now(dt.UTC)
    planned = {int(s["shard"]): int(s["customers"]) for s in plan}
    with open_warehouse(config, config.scoring.duckdb_memory_limit) as wh:
        wh.init_schema((*OUTPUTS, *STAGING_TABLES))
        key = {"run": run_id, "d": score_date}
        done = {
            int(r["shard"]): int(r["staged_rows"])
            for r in wh.query_arrow(
                f"SELECT shard, staged_rows FROM {wh.qualified(SHARD_MANIFEST.name)} WHERE stage_run = :run AND score_date = :d",
                key,
            ).to_pylist()
        }
        _check_complete(planned, done, score_date, run_id)
        staged = {}
        for table in OUTPUTS:
            columns = ", ".join(quote_identifier(c) for c in table.column_names)
            staged[table.name] = wh.query_arrow(
                f"SELECT {columns} FROM {wh.qualified(STAGING[table.name].name)} "
                f"WHERE stage_run = :run AND score_date = :d ORDER BY {ID_COLUMN}",
                key,
            )
        scores = staged[CHURN_SCORES.name]
        if scores.num_rows != sum(planned.values()):
            raise ShardError(
                f"churn_scores_staging: {scores.num_rows} staged rows for score_date {score_date}, run {run_id}, "
                f"but the plan holds {sum(planned.values())} customers; nothing was published"
            )
        _validate_scores(
            scores.column(ID_COLUMN).to_numpy(), scores.column("churn_probability").to_numpy(), score_date, 0
        )
        scores = _with_day_percentiles(scores)
        parts = [
            (table, scores if table is CHURN_SCORES else staged[table.name])
            for table in OUTPUTS
            # the model version has no segment model: the single-task path writes none either
            if not (table is CUSTOMER_SEGMENTS and staged[table.name].num_rows == 0)
        ]
        written = wh.replace_partitions(parts, "score_date", score_date)  # the three tables' day in one step
        with wh.transaction():
            for staging in STAGING_TABLES:
                wh.execute(f"DELETE FROM {wh.qualified(staging.name)} WHERE stage_run = :run AND score_date = :d", key)
        seconds = time.perf_counter() - started
        try:  # housekeeping: a failure here must not fail (and so retry into "did not finish") a published day
            swept = sweep_staging(
                wh,
                dt.timedelta(days=config.scoring.staging_retention_days),
                published=(score_date, run_id, published_at),
            )
        except WarehouseError as exc:
            logger.warning(
                "published %s, but sweeping old staging failed (the next publish retries): %s", score_date, exc
            )
            swept = []
    logger.info("published %d shard(s), %s rows for %s in %.1f s", len(planned), written, score_date, seconds)
    return {
        "score_date": score_date.isoformat(),
        "shards": len(planned),
        "rows": written[CHURN_SCORES.name],
        "reasons": written[CHURN_SCORE_REASONS.name],
        "segments": written.get(CUSTOMER_SEGMENTS.name),
        "publish_seconds": round(seconds, 3),
        "swept_runs": len(swept),
    }


def sweep_staging(
    wh: Warehouse,
    older_than: dt.timedelta | None,
    *,
    run_id: str | None = None,
    published: tuple[dt.date, str, dt.datetime] | None = None,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Delete the staging rows of runs that never published; returns one ``{stage_run, score_date, rows}`` each.

    A (run, score_date) is swept when its last shard finished more than ``older_than`` ago (a failed or
    abandoned run: the shards of a live run finish within hours), when it is ``run_id`` (an operator
    naming a failed run), or, with ``published=(day, run, at)``, when another run published that day at
    ``at`` after this run's last shard finished (its rows can no longer be the day's). A run swept while it
    still meant to publish only fails its publish ("did not finish"), never publishes a partial day.
    """
    now = now or dt.datetime.now(dt.UTC)
    rules, params = [], {}
    if older_than is not None:
        rules.append("MAX(finished_at) < :cutoff")
        params["cutoff"] = now - older_than
    if run_id is not None:
        rules.append("stage_run = :run")
        params["run"] = run_id
    if published is not None:
        rules.append("(score_date = :day AND stage_run <> :publisher AND MAX(finished_at) < :published_at)")
        params.update(day=published[0], publisher=published[1], published_at=published[2])
    if not rules:
        raise ValueError("sweep_staging needs older_than, run_id or published")
    manifest = wh.qualified(SHARD_MANIFEST.name)
    stale = wh.query_arrow(
        f"SELECT stage_run, score_date, SUM(staged_rows) AS rows FROM {manifest} "
        f"GROUP BY stage_run, score_date HAVING {' OR '.join(rules)} ORDER BY score_date, stage_run",
        params,
    ).to_pylist()
    if not stale:
        return []
    with wh.transaction():
        for group in stale:
            key = {"run": group["stage_run"], "d": group["score_date"]}
            for staging in STAGING_TABLES:
                wh.execute(f"DELETE FROM {wh.qualified(staging.name)} WHERE stage_run = :run AND score_date = :d", key)
    for group in stale:
        group["rows"] = int(group["rows"] or 0)
        logger.info(
            "swept the staging of run %s, score_date %s (%d staged scores)",
            group["stage_run"],
            group["score_date"],
            group["rows"],
        )
    return stale


def _check_complete(planned: dict[int, int], done: dict[int, int], score_date: dt.date, run_id: str) -> None:
    missing = sorted(set(planned) - set(done))
    if missing:
        raise ShardError(
            f"churn_score_shards: shard(s) {missing} of {len(planned)} did not finish for score_date {score_date}, "
            f"run {run_id}; rerun them, then publish; nothing was published"
        )
    extra = sorted(set(done) - set(planned))
    if extra:
        raise ShardError(
            f"churn_score_shards: staged shard(s) {extra} are not in the plan of run {run_id}; nothing was published"
        )
    wrong = [(s, done[s], n) for s, n in planned.items() if done[s] != n]
    if wrong:
        shard, got, want = wrong[0]
        raise ShardError(
            f"churn_score_shards: shard {shard} staged {got} customers, the plan holds {want} (score_date "
            f"{score_date}, run {run_id}); the population changed after planning: rerun the day; nothing was published"
        )


def _with_day_percentiles(scores: pa.Table) -> pa.Table:
    """``percentile_rank`` over the whole day (a shard only knew its own customers)."""
    import pyarrow as pa

    index = scores.column_names.index("percentile_rank")
    ranks = percentile_rank(scores.column("churn_probability").to_numpy())
    return scores.set_column(index, "percentile_rank", pa.array(ranks, pa.float64()))
