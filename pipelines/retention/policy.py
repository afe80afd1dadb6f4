"""The learned retention policy: per-customer uplift of every action, then the largest expected net value.

Why this form. With one decision per customer and an outcome a horizon later, the source document's
"Q-learning" is a one-step contextual bandit: there is no next state, so Q(x, a) is just the expected
reward of action ``a`` in context ``x`` and the greedy policy is ``argmax_a Q(x, a)`` (fitted Q-iteration
with one step is a regression). Per customer and action:

    expected_uplift    tau_a(x) = P(retained | x, a) - P(retained | x, none)
    expected_net_value tau_a(x) m(x) - cost_per_contact_a - cost_when_redeemed_a (p0(x) + tau_a(x))

with ``m(x)`` the expected margin of a retained customer (LightGBM on the retained rows) and ``p0(x)``
the baseline retention. Only the uplift is learned; costs are known and enter by formula (learning
net value directly mixes the catalogue's costs into the noise). Two learners (``retention.learner``):

- ``fitted_q`` (default): one LightGBM regression of retained on features + action one-hot
  (the one-step Q-function; an S-learner in uplift terms), ``tau_a = Q(x, a) - Q(x, none)``;
- ``dr``: a doubly robust learner (Kennedy 2023): cross-fitted outcome model, pseudo-outcomes with the
  design's *known* propensities (logged at assignment; the holdout's share enters as P(none)), then a
  LightGBM regression of the pseudo-outcome per action.

On the simulator at 10k customers after one exploration cycle, ``fitted_q`` reaches more of the oracle's
net value than ``dr`` (the DR pseudo-outcomes' variance dominates at this size; figures in
``benchmarks/results``), hence the default.

Library choice: EconML 0.17 (``econml.dr.DRLearner``) installs with our pins and was tried, but it fits
its own propensity model where the design logs the exact propensity, and its fitted estimators persist
only as pickles, which the platform refuses to load. The learners here are LightGBM models saved as
validated text (``model_to_string``) plus a JSON manifest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.retention.assign import BUDGET_REASON, HOLDOUT_OUTSIDE_BUDGET, RetentionError
from pipelines.retention.context import POLICY_FEATURES

if TYPE_CHECKING:
    from pipelines.config import Config

logger = logging.getLogger(__name__)

POLICY_FILE = "policy.json"
_PARAMS = {
    "objective": "regression",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "num_threads": 1,
    "verbose": -1,
    "seed": 11,
    "deterministic": True,
}
_Q_ROUNDS = 200
_MARGIN_ROUNDS = 100
_DR_PARAMS = {**_PARAMS, "num_leaves": 7, "min_data_in_leaf": 80, "lambda_l2": 10.0}
_DR_ROUNDS = 80


def _with_action(x: np.ndarray, k: int, j: int) -> np.ndarray:
    return np.column_stack([x, np.tile(np.eye(k)[j], (len(x), 1))])


class RetentionPolicy:
    """Predicts (uplift, net value) per customer and action from LightGBM text models.

    ``boosters``: ``q`` (retained ~ features + action; always, gives p0), ``margin`` (margin of a retained
    customer ~ features) and, for the ``dr`` learner, ``tau/<action>``. ``meta`` holds the learner, the
    action names and the catalogue's costs at training time.
    """

    def __init__(self, version: str, actions: list[str], boosters: dict[str, Any], meta: dict) -> None:
        self.version = version
        self.actions = list(actions)
        self.boosters = boosters
        self.meta = meta

    def predict(self, context: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = context[list(POLICY_FEATURES)].to_numpy(dtype=np.float64)
        k = len(self.actions)
        q = np.column_stack([self.boosters["q"].predict(_with_action(x, k, j)) for j in range(k)])
        p0 = np.clip(q[:, 0], 0.0, 1.0)
        tau = q - q[:, [0]]
        if self.meta.get("learner") == "dr":
            for j, action in enumerate(self.actions[1:], start=1):
                booster = self.boosters.get(f"tau/{action}")
                tau[:, j] = booster.predict(x) if booster is not None else 0.0
        tau[:, 0] = 0.0
        margin = np.maximum(self.boosters["margin"].predict(x), 0.0)
        contact = np.array([self.meta["costs"][a]["contact"] for a in self.actions])
        redeem = np.array([self.meta["costs"][a]["redeemed"] for a in self.actions])
        net = tau * margin[:, None] - contact[None, :] - redeem[None, :] * np.clip(p0[:, None] + tau, 0.0, 1.0)
        net[:, 0] = 0.0
        return tau, net

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        files = {}
        for key, booster in self.boosters.items():
            name = key.replace("/", "__") + ".txt"
            (directory / name).write_text(booster.model_to_string())
            files[key] = name
        meta = {**self.meta, "version": self.version, "actions": self.actions, "features": list(POLICY_FEATURES)}
        (directory / POLICY_FILE).write_text(json.dumps({**meta, "files": files}, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path, version: str | None = None) -> RetentionPolicy:
        """Load from ``policy.json`` + LightGBM text models; any other file in the folder is refused."""
        import lightgbm as lgb

        directory = Path(directory)
        bad = [p.name for p in directory.iterdir() if p.is_file() and p.suffix not in {".txt", ".json"}]
        if bad:
            raise RetentionError(f"policy folder {directory} holds files other than .txt/.json: {bad}")
        meta = json.loads((directory / POLICY_FILE).read_text())
        if meta.get("features") != list(POLICY_FEATURES):
            raise RetentionError(f"policy in {directory} was trained on features {meta.get('features')}")
        boosters = {key: lgb.Booster(model_str=(directory / name).read_text()) for key, name in meta["files"].items()}
        return cls(version or str(meta["version"]), meta["actions"], boosters, meta)


def design_propensities(config: Config, frame: pd.DataFrame) -> np.ndarray:
    """P(action | customer) of the whole design (holdout included), rows x actions.

    Non-holdout: ``(1 - h)((1 - eps) 1[a = policy_action] + eps / |E| 1[a in E])``; plus ``h`` on ``none``.
    ``h`` is the date's observed holdout share; ``eps`` is recovered from the logged propensities.
    """
    names = config.retention.action_names
    eligible = np.array([[n in s.split(",") for n in names] for s in frame["eligible_actions"]], dtype=bool)
    n_elig = eligible.sum(axis=1)
    pi = frame["policy_action"].map({n: i for i, n in enumerate(names)}).fillna(0).to_numpy(dtype=np.int64)
    out = np.zeros((len(frame), len(names)))
    for _, idx in frame.groupby("action_date").indices.items():
        sub = frame.iloc[idx]
        h = float((sub["group"] == "holdout").mean())
        mask = (sub["group"] != "holdout").to_numpy() & (n_elig[idx] > 1)
        logged, e = sub[mask], n_elig[idx][mask]
        eps = config.retention.exploration_share
        if len(logged):
            same = (logged["action"] == logged["policy_action"]).to_numpy()
            p = logged["propensity"].to_numpy(dtype=np.float64)
            eps = float(np.median(np.where(same, (1 - p) / (1 - 1 / e), p * e)))
        one_hot = np.eye(len(names))[pi[idx]]
        out[idx] = (1 - h) * ((1 - eps) * one_hot + eps * eligible[idx] / n_elig[idx][:, None])
        out[idx, 0] += h
    return out


def fit_policy(
    config: Config, frame: pd.DataFrame, version: str = "candidate", learner: str | None = None, seed: int = 0
) -> RetentionPolicy:
    """Fit the policy on measured assignments (``effects.load_measured`` rows of one or more dates)."""
    import lightgbm as lgb

    from pipelines.retention.effects import _action_index, fit_outcome_model

    learner = learner or config.retention.learner
    frame = frame[frame["reason"].ne(BUDGET_REASON) & frame["reason"].ne(HOLDOUT_OUTSIDE_BUDGET)]
    frame = frame.reset_index(drop=True)
    names = config.retention.action_names
    k = len(names)
    if len(frame) < config.retention.min_outcomes_to_learn:
        raise RetentionError(
            f"retention: {len(frame)} measured assignments, fewer than retention.min_outcomes_to_learn "
            f"({config.retention.min_outcomes_to_learn}): keep the cold-start rules"
        )
    a = _action_index(config, frame["action"])
    x = frame[list(POLICY_FEATURES)].to_numpy(dtype=np.float64)
    y = frame["retained"].to_numpy(dtype=np.float64)
    boosters: dict[str, Any] = {}
    xa = np.column_stack([x, np.eye(k)[a]])
    boosters["q"] = lgb.train(_PARAMS, lgb.Dataset(xa, y), num_boost_round=_Q_ROUNDS)
    retained = y > 0
    margin = frame["revenue"].to_numpy(dtype=np.float64) * config.retention.margin_rate
    boosters["margin"] = lgb.train(_PARAMS, lgb.Dataset(x[retained], margin[retained]), num_boost_round=_MARGIN_ROUNDS)
    if learner == "dr":
        p = np.clip(design_propensities(config, frame), 1e-3, 1.0)
        rows = np.arange(len(frame))
        mu = fit_outcome_model(config, frame, "retained", seed=seed)
        gamma = mu + np.eye(k)[a] * ((y - mu[rows, a]) / p[rows, a])[:, None]
        for j, action in enumerate(names[1:], start=1):
            allowed = frame["eligible_actions"].str.split(",").apply(lambda s, n=action: n in s).to_numpy()
            if allowed.sum() < 50:
                continue
            phi = gamma[allowed, j] - gamma[allowed, 0]
            boosters[f"tau/{action}"] = lgb.train(_DR_PARAMS, lgb.Dataset(x[allowed], phi), num_boost_round=_DR_ROUNDS)
    costs = {"none": {"contact": 0.0, "redeemed": 0.0}}
    costs.update(
        {c.name: {"contact": c.cost_per_contact, "redeemed": c.cost_when_redeemed} for c in config.retention.actions}
    )
    dates = sorted({str(d)[:10] for d in frame["action_date"]})
    meta = {"learner": learner, "costs": costs, "trained_on_dates": dates, "rows": len(frame)}
    logger.info("fitted retention policy (%s) on %d assignments from %s", learner, len(frame), ", ".join(dates))
    return RetentionPolicy(version, names, boosters, meta)


# ---------------------------------------------------------------------------------------------- registry


def _experiment(config: Config, client) -> str:
    from pipelines.tracking import ensure_experiment

    return ensure_experiment(
        config.with_overrides({"registry": {"experiment": config.retention.policy_model_name}}), client
    )


def register_policy(config: Config, policy: RetentionPolicy, metrics: dict[str, float], as_of: dt.date) -> str:
    """Log the policy to MLflow (its own experiment), register a version and point the alias at it."""
    from mlflow.exceptions import MlflowException

    from pipelines.tracking import client_for

    client = client_for(config)
    experiment_id = _experiment(config, client)
    run = client.create_run(experiment_id, run_name=f"retention-policy-{as_of.isoformat()}")
    run_id = run.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        policy.save(Path(tmp) / "policy")
        client.log_artifacts(run_id, str(Path(tmp) / "policy"), "policy")
    for key, value in metrics.items():
        if value is not None and np.isfinite(value):
            client.log_metric(run_id, key, float(value))
    client.log_param(run_id, "actions", ",".join(policy.actions))
    client.log_param(run_id, "rows", policy.meta.get("rows"))
    client.log_param(run_id, "trained_on_dates", ",".join(policy.meta.get("trained_on_dates", [])))
    client.set_terminated(run_id)
    name = config.retention.policy_model_name
    with contextlib.suppress(MlflowException):  # the registered model exists already
        client.create_registered_model(name, description="Retention policy: DR-learner uplift per action.")
    mv = client.create_model_version(name, source=f"{run.info.artifact_uri}/policy", run_id=run_id)
    client.set_registered_model_alias(name, config.retention.policy_alias, str(mv.version))
    logger.info("registered %s version %s as @%s (run %s)", name, mv.version, config.retention.policy_alias, run_id)
    return str(mv.version)


def resolve_policy(config: Config) -> RetentionPolicy | None:
    """The policy at ``retention.policy_alias``, or None (cold start) when none is registered."""
    from mlflow.exceptions import MlflowException

    import mlflow
    from pipelines.tracking import client_for

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = client_for(config)
    name = config.retention.policy_model_name
    try:
        mv = client.get_model_version_by_alias(name, config.retention.policy_alias)
    except MlflowException:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=mv.source, dst_path=tmp, tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri
        )
        return RetentionPolicy.load(Path(local), version=f"v{mv.version}")


def learn_policy(config: Config, as_of: dt.date, *, wh=None, register: bool = True) -> dict[str, Any]:
    """Fit the policy on every action date measured by ``as_of``, value it off-policy, register it.

    The value is estimated on the latest measured date; when the policy also trained on it (only one
    date so far) the figure is in-sample and flagged ``in_sample``.
    """
    from pipelines.retention.effects import load_measured, policy_values
    from pipelines.warehouse import open_warehouse

    own = wh is None
    wh = wh or open_warehouse(config)
    try:
        latest = as_of - dt.timedelta(days=config.retention.horizon_days)
        dates = wh.query_df(
            wh.render("SELECT DISTINCT action_date FROM {retention_outcomes} WHERE action_date <= :d ORDER BY 1"),
            {"d": latest},
        )["action_date"].tolist()
        if not dates:
            raise RetentionError(f"retention_outcomes has no matured action date by {as_of}: nothing to learn from")
        frames = {d: load_measured(wh, d) for d in dates}
    finally:
        if own:
            wh.close()
    train_dates = dates[:-1] if len(dates) > 1 else dates
    train = pd.concat([frames[d] for d in train_dates], ignore_index=True)
    policy = fit_policy(config, train)
    evaluation = policy_values(config, frames[dates[-1]], policy)
    metrics = {f"value_{r['action']}_{r['estimator']}": r["uplift"] for r in evaluation}
    out: dict[str, Any] = {
        "trained_on": [str(d)[:10] for d in train_dates],
        "evaluated_on": str(dates[-1])[:10],
        "in_sample": len(dates) == 1,
        "rows": policy.meta["rows"],
        "values": {k: round(float(v), 4) for k, v in metrics.items()},
    }
    if len(dates) > 1:  # the registered policy uses every measured date
        policy = fit_policy(config, pd.concat(frames.values(), ignore_index=True))
    if register:
        metrics["in_sample"] = float(out["in_sample"])
        out["version"] = register_policy(config, policy, metrics, as_of)
    return out


def load_policy_version(config: Config, version: str) -> RetentionPolicy:
    """A registered policy version (e.g. the one that made a past day's decisions)."""
    import mlflow
    from pipelines.tracking import client_for

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = client_for(config)
    mv = client.get_model_version(config.retention.policy_model_name, str(version))
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=mv.source, dst_path=tmp, tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri
        )
        return RetentionPolicy.load(Path(local), version=f"v{mv.version}")
