"""Batch scoring: one row per population customer, valid tiers, atomic idempotent writes, validation.

The model is a labelled stand-in (``standins.StandInPredictor``, a fixed logistic formula); the
features and the warehouse are real (DuckDB and Postgres via the ``backend_config`` fixture).
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from pipelines.config import Config, ConfigError
from pipelines.contract import ExitCode
from pipelines.scoring import ScoringError, assign_risk_tiers, population_count, score_customers
from pipelines.warehouse import open_warehouse

TIERS = {"low": 0.0, "medium": 0.3, "high": 0.6}


def _scores(config, day):
    with open_warehouse(config) as wh:
        return wh.query_df(
            wh.render("SELECT * FROM {churn_scores} WHERE score_date = :d ORDER BY customer_id"), {"d": day}
        )


def test_assign_risk_tiers_takes_highest_bound_reached():
    p = [0.0, 0.2999, 0.3, 0.5999, 0.6, 1.0]
    assert assign_risk_tiers(p, TIERS).tolist() == ["low", "low", "medium", "medium", "high", "high"]
    # dict order does not matter
    assert assign_risk_tiers(p, {"high": 0.6, "low": 0.0, "medium": 0.3}).tolist() == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    assert assign_risk_tiers([0.95], {"all": 0.0}).tolist() == ["all"]


def test_risk_tiers_config_must_start_at_zero():
    with pytest.raises(ConfigError, match="risk_tiers"):
        Config().with_overrides({"scoring": {"risk_tiers": {"low": 0.1}}})  # merged: nothing covers [0, 0.1)
    with pytest.raises(ConfigError, match="risk_tiers"):
        Config().with_overrides({"scoring": {"risk_tiers": {"high": 1.5}}})


def test_scores_every_population_customer_once(tiny_config, standins, monkeypatch):
    predictor = standins.install_standin(monkeypatch)
    config = tiny_config.with_overrides({"scoring": {"chunk_rows": 37}})  # several chunks
    result = score_customers(config, standins.SCORE_DATE, "3", "manual__2025-03-01")

    frame = _scores(config, standins.SCORE_DATE)
    with open_warehouse(config) as wh:
        expected = population_count(wh, config, standins.SCORE_DATE)
    assert expected > 50
    assert result["rows"] == len(frame) == frame["customer_id"].nunique() == expected
    assert predictor.loaded == [("3", config.scoring.predictor_options())]
    assert predictor.calls >= 3  # streamed in chunks
    p = frame["churn_probability"].to_numpy()
    assert np.all((p >= 0) & (p <= 1))
    assert frame["risk_tier"].tolist() == assign_risk_tiers(p, config.scoring.risk_tiers).tolist()
    assert result["tiers"] == frame["risk_tier"].value_counts().reindex(list(TIERS), fill_value=0).to_dict()
    assert set(frame["model_version"]) == {"3"} and set(frame["run_id"]) == {"manual__2025-03-01"}
    assert set(frame["model_name"]) == {config.registry.model_name}
    assert result["model_version"] == "3" and result["seconds"] > 0


def test_rescoring_a_date_replaces_its_rows(tiny_config, standins, monkeypatch):
    standins.install_standin(monkeypatch)
    other_day = standins.PAST_DATE
    score_customers(tiny_config, other_day, "1", "run-other-day")
    first = score_customers(tiny_config, standins.SCORE_DATE, "1", "run-1")
    second = score_customers(tiny_config, standins.SCORE_DATE, "2", "run-2")

    frame = _scores(tiny_config, standins.SCORE_DATE)
    assert first["rows"] == second["rows"] == len(frame) == frame["customer_id"].nunique()
    assert set(frame["run_id"]) == {"run-2"} and set(frame["model_version"]) == {"2"}
    assert set(_scores(tiny_config, other_day)["run_id"]) == {"run-other-day"}  # other partitions untouched
    with open_warehouse(tiny_config) as wh:
        latest = wh.query_df(wh.render("SELECT customer_id, score_date FROM {churn_scores_latest}"))
    assert latest["customer_id"].is_unique


@pytest.mark.parametrize("bad, match", [(np.nan, "not finite"), (1.3, r"outside \[0, 1\]")])
def test_invalid_probabilities_write_nothing(tiny_config, standins, monkeypatch, bad, match):
    standins.install_standin(monkeypatch)
    score_customers(tiny_config, standins.SCORE_DATE, "1", "good-run")
    before = _scores(tiny_config, standins.SCORE_DATE)

    def corrupt(p):
        p = p.copy()
        p[len(p) // 2] = bad
        return p

    standins.install_standin(monkeypatch, standins.StandInPredictor(override=corrupt))
    with pytest.raises(ScoringError, match=rf"churn_scores\.churn_probability: 1 value\(s\).*{match}") as err:
        score_customers(tiny_config, standins.SCORE_DATE, "2", "bad-run")
    assert "nothing was written" in str(err.value) and err.value.exit_code == ExitCode.SCORING
    after = _scores(tiny_config, standins.SCORE_DATE)
    assert len(after) == len(before) and set(after["run_id"]) == {"good-run"}


def test_duplicate_customers_write_nothing(config, standins, monkeypatch):
    import pipelines.features

    standins.load_tiny_warehouse(config, customers=60)
    standins.install_standin(monkeypatch)
    real = pipelines.features.iter_scoring_features

    def twice(wh, cfg, day, chunk_rows, id_range=None):  # a broken feature stream that repeats its first chunk
        chunks = list(real(wh, cfg, day, chunk_rows, id_range))
        yield from [chunks[0], *chunks]

    monkeypatch.setattr(pipelines.features, "iter_scoring_features", twice)
    with pytest.raises(ScoringError, match=r"churn_scores\.customer_id: \d+ customer\(s\) appear more than once"):
        score_customers(config, standins.SCORE_DATE, "1", "dup-run")
    assert _scores(config, standins.SCORE_DATE).empty


def test_empty_population_is_an_error(config, standins, monkeypatch):
    standins.load_tiny_warehouse(config, customers=30)
    standins.install_standin(monkeypatch)
    with pytest.raises(ScoringError, match="population for score_date 2030-01-01 is empty"):
        score_customers(config, dt.date(2030, 1, 1), "1", "empty-run")


def test_refuses_a_non_version(config):
    with pytest.raises(ScoringError, match="never 'latest'"):
        score_customers(config, "2025-03-01", "latest", "run")


def test_scoring_runs_under_its_own_duckdb_memory_cap(tiny_config, standins, monkeypatch):
    import pipelines.warehouse as warehouse

    if not tiny_config.warehouse_url.startswith("duckdb"):
        pytest.skip("a DuckDB setting; Postgres memory is the server's")
    standins.install_standin(monkeypatch)
    seen = []
    real_open = warehouse.open_warehouse

    def spy(config, duckdb_memory_limit=None):
        wh = real_open(config, duckdb_memory_limit)
        seen.append(wh.scalar("SELECT current_setting('memory_limit')"))
        return wh

    monkeypatch.setattr(warehouse, "open_warehouse", spy)
    config = tiny_config.with_overrides({"scoring": {"duckdb_memory_limit": "300MB"}})
    score_customers(config, standins.SCORE_DATE, "3", "manual__cap")
    with real_open(config) as wh:
        uncapped = wh.scalar("SELECT current_setting('memory_limit')")
    assert seen == ["286.1 MiB"] and uncapped != "286.1 MiB"  # 300 MB; the warehouse default stays DuckDB's


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_non_finite_raw_numbers_fail_scoring_naming_the_feature(tiny_config, standins, monkeypatch, value):
    """A NaN/inf order total that slipped past validation must not become a score (both engines)."""
    standins.install_standin(monkeypatch)
    with open_warehouse(tiny_config) as wh:
        customer = int(wh.scalar(wh.render("SELECT MIN(customer_id) FROM {orders} WHERE status = 'completed'")))
        wh.execute(
            wh.render(
                f"UPDATE {{orders}} SET total_amount = CAST('{value}' AS DOUBLE PRECISION) WHERE customer_id = :c"
            ),
            {"c": customer},
        )
    with pytest.raises(ScoringError) as err:
        score_customers(tiny_config, standins.SCORE_DATE, "1", "nan-run")
    message = str(err.value)
    assert message.startswith("feature ") and "non-finite" in message and "nothing was written" in message
    assert "\n" not in message and err.value.exit_code == ExitCode.SCORING
    assert f"customer_id {customer}" in message
    assert len(_scores(tiny_config, standins.SCORE_DATE)) == 0


def test_scoring_builds_the_text_view_style_the_model_was_trained_on(tiny_config, standins, monkeypatch):
    """A model trained on compact text views gets compact views, whatever dataset.text_style says."""

    class CompactReader(standins.StandInPredictor):
        kind = "transformer"
        metadata = {"text": {"max_length": 48, "style": "compact"}}

        def predict_proba(self, frame):
            self.texts = [*getattr(self, "texts", []), *frame["text_view"].dropna().tolist()]
            return super().predict_proba(frame)

    predictor = standins.install_standin(monkeypatch, CompactReader())
    assert tiny_config.dataset.text_style == "verbose"
    score_customers(tiny_config, standins.SCORE_DATE, "3", "manual__2025-03-01")
    assert predictor.texts and not any(" ago]" in text for text in predictor.texts)  # verbose writes "[12d ago]"
    assert any(re.search(r"(^|\| )\d+d order ", text) for text in predictor.texts)  # compact writes "12d order"
