"""Measured effects of the actions against the holdout, and off-policy values of candidate policies.

**Action effects** (``kind = action_effect``, estimator ``cuped_ipw``). For action ``a`` the population
is every in-budget customer the rules allowed ``a`` (``eligible_actions``). Treated mean: inverse-
propensity weighted (self-normalised) over the non-holdout rows of that population, weight
``1[action = a] / propensity``, so the policy's preference for some customers does not bias it. Control:
the holdout rows of the same population (random by the hash). CUPED: the outcome minus
``theta (X - mean X)``, ``X`` a linear prediction of the outcome from the pre-period features
(``POLICY_FEATURES``, fitted on the pooled rows), ``theta = cov(Y, X) / var(X)``; it removes variance the
pre-period explains and no bias (X is fixed before the action). 95% CIs from the linearised variance.

**Policy values** (``kind = policy_value``): net value per customer of a target policy over the
randomised, non-holdout rows, by IPS, self-normalised IPS and doubly robust (outcome model: LightGBM on
features + action, 2-fold cross-fitted), each with a 95% CI; ``on_policy`` is the mean net value the
logged assignment realised. Policies: ``logging`` (what ran), ``random`` (uniform over eligible),
``top_risk_decile`` (the cold-start rule's action for the riskiest 10%, none for the rest),
``none``, and ``learned`` when a policy model is given. The budget is not re-applied to the targets.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.contract import RETENTION_EFFECTS
from pipelines.retention.assign import BUDGET_REASON, HOLDOUT_OUTSIDE_BUDGET, rules_policy
from pipelines.retention.context import POLICY_FEATURES, load_context

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

Z95 = 1.959963984540054

_JOINED_SQL = """
SELECT a.customer_id, a.action_date, a.action, a."group", a.propensity, a.policy_action, a.eligible_actions, a.reason,
       o.retained, o.revenue, o.net_value
FROM {retention_actions} a
JOIN {retention_outcomes} o ON o.action_date = a.action_date AND o.customer_id = a.customer_id
WHERE a.action_date = :action_date
ORDER BY a.customer_id
"""


def load_measured(wh: Warehouse, action_date: dt.date) -> pd.DataFrame:
    """Assignments joined with their outcomes and pre-period context, for one matured action date."""
    frame = wh.query_df(wh.render(_JOINED_SQL), {"action_date": action_date})
    if frame.empty:
        return frame
    context = load_context(wh, action_date)
    frame = frame.merge(context, on="customer_id", how="left", suffixes=("", "_ctx"))
    frame["retained"] = frame["retained"].astype(np.float64)
    for col in POLICY_FEATURES:
        frame[col] = frame[col].astype(np.float64).fillna(0.0)
    return frame


def cuped_covariate(frame: pd.DataFrame, outcome: str) -> np.ndarray:
    """Linear prediction of ``outcome`` from the pre-period features (least squares on standardised X)."""
    x = frame[list(POLICY_FEATURES)].to_numpy(dtype=np.float64)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    design = np.column_stack([np.ones(len(x)), x])
    coef, *_ = np.linalg.lstsq(design, frame[outcome].to_numpy(dtype=np.float64), rcond=None)
    return design @ coef


def ipw_difference(
    y: np.ndarray, weight: np.ndarray, treated_pool: np.ndarray, control: np.ndarray
) -> tuple[float, float, float, float]:
    """(treated SN-IPW mean, control mean, difference, standard error of the difference)."""
    w = np.where(treated_pool, weight, 0.0)
    sw = w.sum()
    if sw <= 0 or control.sum() < 2:
        return float("nan"), float("nan"), float("nan"), float("nan")
    mu_t = float((w * y).sum() / sw)
    var_t = float((w**2 * (y - mu_t) ** 2).sum() / sw**2)
    yc = y[control]
    mu_c = float(yc.mean())
    var_c = float(yc.var(ddof=1) / len(yc))
    return mu_t, mu_c, mu_t - mu_c, float(np.sqrt(var_t + var_c))


def action_effects(config: Config, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per action: retention, revenue and net-value uplift vs the holdout (CUPED + IPW)."""
    comparable = frame["reason"].ne(BUDGET_REASON) & frame["reason"].ne(HOLDOUT_OUTSIDE_BUDGET)
    holdout = frame["group"].eq("holdout").to_numpy()
    rows = []
    adjusted = {}
    for outcome in ("retained", "revenue", "net_value"):
        x = cuped_covariate(frame, outcome)
        y = frame[outcome].to_numpy(dtype=np.float64)
        theta = float(np.cov(y, x)[0, 1] / x.var(ddof=1)) if x.var() > 0 else 0.0
        adjusted[outcome] = y - theta * (x - x.mean())
    for action in config.retention.action_names[1:]:
        eligible = frame["eligible_actions"].str.split(",").apply(lambda names, a=action: a in names).to_numpy()
        pool = comparable.to_numpy() & eligible
        treated_pool = pool & ~holdout
        control = pool & holdout
        given = frame["action"].eq(action).to_numpy()
        weight = np.where(given, 1.0 / frame["propensity"].to_numpy(dtype=np.float64), 0.0)
        raw_t, raw_c, _, _ = ipw_difference(frame["retained"].to_numpy(dtype=np.float64), weight, treated_pool, control)
        _, _, uplift, se = ipw_difference(adjusted["retained"], weight, treated_pool, control)
        _, _, revenue_uplift, _ = ipw_difference(adjusted["revenue"], weight, treated_pool, control)
        _, _, net_uplift, _ = ipw_difference(adjusted["net_value"], weight, treated_pool, control)
        rows.append(
            {
                "kind": "action_effect",
                "action": action,
                "estimator": "cuped_ipw",
                "n": int((given & treated_pool).sum()),
                "retention_rate": raw_t,
                "holdout_rate": raw_c,
                "uplift": uplift,
                "ci_low": uplift - Z95 * se,
                "ci_high": uplift + Z95 * se,
                "revenue_uplift": revenue_uplift,
                "net_value": net_uplift,
            }
        )
    return rows


def _action_index(config: Config, names: pd.Series) -> np.ndarray:
    lookup = {n: i for i, n in enumerate(config.retention.action_names)}
    return names.map(lookup).fillna(-1).to_numpy(dtype=np.int64)


def eligibility_matrix(config: Config, frame: pd.DataFrame) -> np.ndarray:
    names = config.retention.action_names
    sets = frame["eligible_actions"].str.split(",")
    return np.array([[n in s for n in names] for s in sets], dtype=bool).reshape(len(frame), len(names))


def fit_outcome_model(config: Config, frame: pd.DataFrame, outcome: str = "net_value", seed: int = 0) -> np.ndarray:
    """Cross-fitted (2 folds) Q(x, a) for every row and action: LightGBM on features + action one-hot."""
    from lightgbm import LGBMRegressor

    k = len(config.retention.action_names)
    x = frame[list(POLICY_FEATURES)].to_numpy(dtype=np.float64)
    a = _action_index(config, frame["action"])
    y = frame[outcome].to_numpy(dtype=np.float64)
    fold = np.random.default_rng(seed).integers(0, 2, len(frame))
    q = np.zeros((len(frame), k))
    for f in (0, 1):
        train, test = fold != f, fold == f
        if train.sum() < 20 or test.sum() == 0:
            q[test] = y[train].mean() if train.any() else 0.0
            continue
        model = LGBMRegressor(
            n_estimators=120, learning_rate=0.05, num_leaves=15, min_child_samples=20, n_jobs=1, verbose=-1
        )
        model.fit(np.column_stack([x[train], np.eye(k)[a[train]]]), y[train])
        for j in range(k):
            q[test, j] = model.predict(np.column_stack([x[test], np.tile(np.eye(k)[j], (test.sum(), 1))]))
    return q


def off_policy_values(
    target: np.ndarray, logged_action: np.ndarray, propensity: np.ndarray, reward: np.ndarray, q: np.ndarray
) -> dict[str, tuple[float, float, float]]:
    """IPS, SNIPS and DR value of a target policy (rows x actions probabilities): (estimate, ci_low, ci_high)."""
    n = len(reward)
    rows = np.arange(n)
    w = target[rows, logged_action] / propensity
    ips_terms = w * reward
    ips = float(ips_terms.mean())
    ips_se = float(ips_terms.std(ddof=1) / np.sqrt(n))
    snips = float(ips_terms.sum() / w.sum()) if w.sum() > 0 else float("nan")
    snips_se = float(np.sqrt(((w * (reward - snips)) ** 2).sum()) / w.sum()) if w.sum() > 0 else float("nan")
    dr_terms = (target * q).sum(axis=1) + w * (reward - q[rows, logged_action])
    dr = float(dr_terms.mean())
    dr_se = float(dr_terms.std(ddof=1) / np.sqrt(n))
    return {
        "ips": (ips, ips - Z95 * ips_se, ips + Z95 * ips_se),
        "snips": (snips, snips - Z95 * snips_se, snips + Z95 * snips_se),
        "dr": (dr, dr - Z95 * dr_se, dr + Z95 * dr_se),
    }


def candidate_policies(
    config: Config, frame: pd.DataFrame, eligible: np.ndarray, policy=None, policy_name: str = "learned"
) -> dict[str, np.ndarray]:
    """Target policies as (rows x actions) probability matrices over the given rows."""
    n, k = eligible.shape
    out: dict[str, np.ndarray] = {}
    none = np.zeros((n, k))
    none[:, 0] = 1.0
    out["none"] = none
    out["random"] = eligible / eligible.sum(axis=1, keepdims=True)
    rules = rules_policy(config, frame, eligible)
    risk = frame["churn_probability"].to_numpy(dtype=np.float64)
    top = risk >= np.quantile(risk, 0.9) if n else np.zeros(0, dtype=bool)
    out["top_risk_decile"] = np.eye(k)[np.where(top, rules, 0)]
    if policy is not None:
        _, net = policy.predict(frame)
        masked = np.where(eligible, net, -np.inf)
        masked[:, 0] = 0.0
        out[policy_name] = np.eye(k)[masked.argmax(axis=1)]
    return out


def policy_values(
    config: Config, frame: pd.DataFrame, policy=None, policy_name: str = "learned"
) -> list[dict[str, Any]]:
    """Off-policy value rows over the randomised (non-holdout, in-budget) assignments."""
    logged = frame[frame["group"].ne("holdout") & frame["reason"].ne(BUDGET_REASON)].reset_index(drop=True)
    if len(logged) < 20:
        return []
    eligible = eligibility_matrix(config, logged)
    a = _action_index(config, logged["action"])
    p = logged["propensity"].to_numpy(dtype=np.float64)
    r = logged["net_value"].to_numpy(dtype=np.float64)
    q = fit_outcome_model(config, logged)
    rows = []
    on_policy_se = float(r.std(ddof=1) / np.sqrt(len(r)))
    rows.append(
        _value_row(
            "logging",
            "on_policy",
            len(r),
            float(r.mean()),
            r.mean() - Z95 * on_policy_se,
            r.mean() + Z95 * on_policy_se,
        )
    )
    for name, target in candidate_policies(config, logged, eligible, policy, policy_name).items():
        for estimator, (value, low, high) in off_policy_values(target, a, p, r, q).items():
            rows.append(_value_row(name, estimator, len(r), value, low, high))
    return rows


def _value_row(policy: str, estimator: str, n: int, value: float, low: float, high: float) -> dict[str, Any]:
    return {
        "kind": "policy_value",
        "action": policy,
        "estimator": estimator,
        "n": int(n),
        "retention_rate": None,
        "holdout_rate": None,
        "uplift": float(value),
        "ci_low": float(low),
        "ci_high": float(high),
        "revenue_uplift": None,
        "net_value": float(value),
    }


def qini_curve(score: np.ndarray, y: np.ndarray, treated: np.ndarray, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(share targeted, incremental retained customers per customer) when targeting by ``score`` first.

    Qini(phi) = (R_T(phi) - R_C(phi) N_T(phi) / N_C(phi)) / N, over the top ``phi`` share by score.
    """
    order = np.argsort(-score, kind="stable")
    y, treated = y[order], treated[order]
    n = len(y)
    cuts = np.unique(np.linspace(0, n, bins + 1).astype(int))[1:]
    r_t = np.cumsum(y * treated)[cuts - 1]
    r_c = np.cumsum(y * ~treated)[cuts - 1]
    n_t = np.cumsum(treated)[cuts - 1]
    n_c = np.cumsum(~treated)[cuts - 1]
    q = (r_t - np.where(n_c > 0, r_c * n_t / np.maximum(n_c, 1), 0.0)) / n
    return np.concatenate([[0.0], cuts / n]), np.concatenate([[0.0], q])


def uplift_model_rows(config: Config, frame: pd.DataFrame, policy) -> list[dict[str, Any]]:
    """Qini coefficient and AUUC of the policy's uplift per action, on the randomised comparison only.

    Treated: exploration rows given the action (random among the eligible); control: the comparable
    holdout rows eligible for it. Qini coefficient: area between the Qini curve and the random-targeting
    line; AUUC: area under the Qini curve (both per customer of that comparison).
    """
    tau, _ = policy.predict(frame)
    comparable = frame["reason"].ne(BUDGET_REASON) & frame["reason"].ne(HOLDOUT_OUTSIDE_BUDGET)
    rows = []
    for j, action in enumerate(config.retention.action_names[1:], start=1):
        eligible = frame["eligible_actions"].str.split(",").apply(lambda s, a=action: a in s)
        treated = comparable & frame["group"].eq("explore") & frame["action"].eq(action)
        control = comparable & frame["group"].eq("holdout") & eligible
        mask = (treated | control).to_numpy()
        if treated.sum() < 20 or control.sum() < 20:
            continue
        share, q = qini_curve(tau[mask, j], frame.loc[mask, "retained"].to_numpy(), treated.to_numpy()[mask])
        auuc = float(np.trapezoid(q, share))
        qini = auuc - float(q[-1]) / 2
        for estimator, value in (("qini", qini), ("auuc", auuc)):
            rows.append(
                {
                    "kind": "uplift_model",
                    "action": action,
                    "estimator": estimator,
                    "n": int(mask.sum()),
                    "retention_rate": None,
                    "holdout_rate": None,
                    "uplift": value,
                    "ci_low": None,
                    "ci_high": None,
                    "revenue_uplift": None,
                    "net_value": None,
                }
            )
    return rows


def compute_effects(
    config: Config, action_date: dt.date, *, policy=None, policy_name: str = "learned", wh: Warehouse | None = None
) -> list[dict]:
    """Replace the ``retention_effects`` partition of a measured action date; returns its rows.

    ``policy`` adds its off-policy value (as ``policy_name``: ``learned_in_sample`` when it was trained on this
    date's outcomes) and its Qini/AUUC.
    """
    from pipelines.warehouse import open_warehouse

    own = wh is None
    wh = wh or open_warehouse(config)
    try:
        frame = load_measured(wh, action_date)
        if frame.empty:
            from pipelines.retention.assign import RetentionError

            raise RetentionError(f"retention_outcomes has no rows for action_date {action_date}: not matured yet")
        rows = action_effects(config, frame) + policy_values(config, frame, policy, policy_name)
        if policy is not None:
            rows += uplift_model_rows(config, frame, policy)
        data = pd.DataFrame(rows)
        data.insert(0, "action_date", action_date)
        data["computed_at"] = pd.Timestamp.now(tz="UTC")
        data = data[RETENTION_EFFECTS.column_names]
        wh.replace_partition(RETENTION_EFFECTS, data, "action_date", action_date)
    finally:
        if own:
            wh.close()
    for row in rows:
        if row["kind"] == "action_effect":
            logger.info(
                "effect of %s on %s: retention %+.3f [%+.3f, %+.3f], net value %+.2f per customer (n=%d)",
                row["action"],
                action_date,
                row["uplift"],
                row["ci_low"],
                row["ci_high"],
                row["net_value"],
                row["n"],
            )
    return rows
