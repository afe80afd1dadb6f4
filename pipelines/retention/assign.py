"""Choose one retention action per scored customer, as a randomised experiment with logged propensities.

Design (every step is what makes a later estimate honest):

1. **Permanent global holdout.** ``sha256(salt:customer_id)`` mapped to [0, 1) below ``holdout_share``:
   the same customers on every run, never contacted (``group = holdout``, ``propensity = 1``). Effects
   are measured against them.
2. **Eligibility** from the catalogue's business rules: minimum risk tier, contact consent per channel,
   at most N retention contacts in the 30/90 days before, no action (a coupon) within N days after a
   return. ``none`` is always eligible.
3. **Policy.** Cold start: an action per risk tier (``retention.cold_start_rules``). Once a learned policy
   is registered: per customer the eligible action with the largest expected net value (uplift x margin
   - cost, ``none`` = 0).
4. **Budget.** Customers are taken in priority order (expected net value, or churn risk under the rules)
   while the run's worst-case spend (each customer's dearest eligible action, contact plus redemption)
   stays within ``budget_per_run``, so no exploration draw and no customer behaviour can overspend.
   The rest get ``none`` (``propensity = 1``, reason ``budget``).
5. **Exploration.** Within the budget, a seeded draw sends ``exploration_share`` of customers to an action
   drawn uniformly from their eligible ones (``group = explore``). Every row logs
   ``P(action | customer) = (1 - eps) [action = policy_action] + eps / |eligible|``.
6. **Sample-ratio mismatch.** The realised holdout and exploration shares are tested against their design
   shares (two-sided binomial z-test); p < 0.001 is logged as a warning and returned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from pipelines.contract import RETENTION_ACTIONS, ExitCode
from pipelines.retention.context import load_consent, load_context

if TYPE_CHECKING:
    from pipelines.config import Config
    from pipelines.warehouse import Warehouse

logger = logging.getLogger(__name__)

SRM_ALPHA = 0.001
RULES_VERSION = "rules"
HOLDOUT_OUTSIDE_BUDGET = "holdout: outside budget"
BUDGET_REASON = "budget: none"


class RetentionError(RuntimeError):
    """The retention job cannot run (no scores for the date, bad input); nothing was written."""

    exit_code = ExitCode.RETENTION


class PolicyModel(Protocol):
    """What assignment needs of a learned policy (``pipelines.retention.policy.RetentionPolicy``)."""

    version: str
    actions: list[str]

    def predict(self, context: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(uplift, net_value), each (n customers x len(actions)); column 0 is ``none`` (zeros)."""


def holdout_mask(customer_ids: np.ndarray, salt: str, share: float) -> np.ndarray:
    """True for the permanent holdout: a salted hash of the id, so membership never depends on the run."""
    out = np.empty(len(customer_ids), dtype=bool)
    for i, cid in enumerate(np.asarray(customer_ids).tolist()):
        digest = hashlib.sha256(f"{salt}:{int(cid)}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2**64 < share
    return out


def tier_rank(config: Config) -> dict[str, int]:
    ordered = sorted(config.scoring.risk_tiers, key=config.scoring.risk_tiers.get)
    return {name: i for i, name in enumerate(ordered)}


def eligibility(config: Config, context: pd.DataFrame, consent: pd.DataFrame) -> np.ndarray:
    """Boolean matrix (customers x actions, ``none`` first) of what the business rules allow."""
    rc = config.retention
    ranks = tier_rank(config)
    tier = context["risk_tier"].map(ranks).fillna(-1).to_numpy()
    out = np.ones((len(context), len(rc.action_names)), dtype=bool)
    for j, action in enumerate(rc.actions, start=1):
        ok = np.ones(len(context), dtype=bool)
        if action.min_risk_tier is not None:
            ok &= tier >= ranks[action.min_risk_tier]
        if action.requires_consent and action.channel != "none":
            ok &= consent[action.channel].to_numpy(dtype=bool)
        if action.max_contacts_30d is not None:
            ok &= context["contacts_30d"].to_numpy() < action.max_contacts_30d
        if action.max_contacts_90d is not None:
            ok &= context["contacts_90d"].to_numpy() < action.max_contacts_90d
        if action.block_after_return_days is not None:
            ok &= context["days_since_last_return"].to_numpy() > action.block_after_return_days
        out[:, j] = ok
    return out


def worst_case_cost(config: Config, eligible: np.ndarray) -> np.ndarray:
    """Per customer, the dearest eligible action's contact + redemption cost (what the budget reserves)."""
    cost = np.array([0.0] + [a.cost_per_contact + a.cost_when_redeemed for a in config.retention.actions])
    return np.where(eligible, cost[None, :], 0.0).max(axis=1)


def rules_policy(config: Config, context: pd.DataFrame, eligible: np.ndarray) -> np.ndarray:
    """Cold start: the tier's action when eligible, else none (index into action_names)."""
    names = config.retention.action_names
    wanted = context["risk_tier"].map(config.retention.cold_start_rules).fillna("none")
    index = wanted.map({n: i for i, n in enumerate(names)}).to_numpy(dtype=np.int64)
    ok = eligible[np.arange(len(index)), index]
    return np.where(ok, index, 0)


def srm_pvalue(observed: int, total: int, share: float) -> float:
    """Two-sided binomial z-test of ``observed`` of ``total`` against the design ``share`` (1.0 when n = 0)."""
    if total == 0 or share <= 0 or share >= 1:
        return 1.0
    z = (observed - total * share) / math.sqrt(total * share * (1 - share))
    return math.erfc(abs(z) / math.sqrt(2))


def plan_assignments(
    config: Config,
    context: pd.DataFrame,
    eligible: np.ndarray,
    action_date: dt.date,
    policy: PolicyModel | None = None,
) -> pd.DataFrame:
    """The day's decisions (pure: no warehouse); one row per context row, RETENTION_ACTIONS columns minus timing."""
    rc = config.retention
    names = rc.action_names
    n, k = eligible.shape
    holdout = holdout_mask(context["customer_id"].to_numpy(), rc.holdout_salt, rc.holdout_share)
    uplift = np.full((n, k), np.nan)
    net = np.full((n, k), np.nan)
    if policy is not None:
        if list(policy.actions) != names:
            raise RetentionError(
                f"policy {policy.version} was trained for actions {policy.actions}, the catalogue is {names}"
            )
        uplift, net = policy.predict(context)
        masked = np.where(eligible, net, -np.inf)
        masked[:, 0] = 0.0
        chosen = masked.argmax(axis=1)
        priority = masked[np.arange(n), chosen]
        version, why = policy.version, "model: largest expected net value"
    else:
        chosen = rules_policy(config, context, eligible)
        priority = context["churn_probability"].to_numpy(dtype=float)
        version, why = RULES_VERSION, "rules: action of the risk tier"

    # Budget: highest priority first, reserving each customer's worst-case cost.
    worst = np.where(holdout, 0.0, worst_case_cost(config, eligible))
    order = np.lexsort((context["customer_id"].to_numpy(), -priority))
    spent = np.cumsum(worst[order])
    in_budget = np.zeros(n, dtype=bool)
    in_budget[order] = spent <= rc.budget_per_run + 1e-9
    in_budget &= ~holdout

    rng = np.random.default_rng(np.random.SeedSequence(rc.seed, spawn_key=(action_date.toordinal(),)))
    explore_draw = rng.random(n) < rc.exploration_share
    uniform_pick = rng.random(n)
    n_eligible = eligible.sum(axis=1)
    # The uniform action: the floor(u * |E|)-th eligible action of the customer.
    rank = np.minimum((uniform_pick * n_eligible).astype(np.int64), n_eligible - 1)
    cum = np.cumsum(eligible, axis=1) - 1
    explored = np.argmax(eligible & (cum == rank[:, None]), axis=1)

    explore = in_budget & explore_draw
    action = np.where(explore, explored, np.where(in_budget, chosen, 0))
    policy_action = np.where(in_budget, chosen, 0)
    eps = rc.exploration_share
    propensity = np.where(
        in_budget,
        (1 - eps) * (action == chosen) + eps / n_eligible,
        1.0,
    )
    group = np.where(holdout, "holdout", np.where(explore, "explore", "policy"))
    # A holdout customer is comparable with the treated ones only if the budget would have reached them.
    if (~in_budget & ~holdout).any():
        cut = priority[in_budget].min() if in_budget.any() else np.inf
        holdout_reason = np.where(priority >= cut, "holdout", HOLDOUT_OUTSIDE_BUDGET)
    else:
        holdout_reason = np.full(n, "holdout", dtype=object)
    reason = np.where(
        holdout,
        holdout_reason,
        np.where(explore, "exploration: uniform over eligible", np.where(in_budget, why, BUDGET_REASON)),
    )
    rows = np.arange(n)
    name_arr = np.array(names, dtype=object)
    elig_text = [",".join(name_arr[row]) for row in eligible]
    return pd.DataFrame(
        {
            "customer_id": context["customer_id"].to_numpy(dtype=np.int64),
            "action_date": action_date,
            "action": name_arr[action],
            "group": group,
            "propensity": propensity,
            # For the holdout: what the policy would have chosen (the learner needs it for design propensities).
            "policy_action": name_arr[np.where(holdout, chosen, policy_action)],
            "eligible_actions": elig_text,
            "risk_tier": context["risk_tier"].astype(str).to_numpy(),
            "churn_probability": context["churn_probability"].to_numpy(dtype=float),
            "expected_uplift": uplift[rows, action],
            "expected_net_value": net[rows, action],
            "policy_version": version,
            "recommended_products": None,
            "reason": reason,
        }
    )


def check_sample_ratios(config: Config, plan: pd.DataFrame) -> dict[str, float]:
    """p-values of the holdout and exploration shares against the design; warns below SRM_ALPHA."""
    rc = config.retention
    n = len(plan)
    holdout_p = srm_pvalue(int((plan["group"] == "holdout").sum()), n, rc.holdout_share)
    randomised = plan[(plan["group"] != "holdout") & (plan["reason"] != BUDGET_REASON)]
    explore_p = srm_pvalue(int((randomised["group"] == "explore").sum()), len(randomised), rc.exploration_share)
    out = {"srm_holdout_p": holdout_p, "srm_explore_p": explore_p}
    for key, p in out.items():
        if p < SRM_ALPHA:
            logger.warning(
                "sample-ratio mismatch: %s = %.2g (< %g): check the assignment before trusting effects", key, p
            )
    return out


def assign_actions(
    config: Config,
    action_date: dt.date,
    *,
    policy: PolicyModel | None = None,
    recommender: Callable[[Any, pd.DataFrame], pd.Series] | None = None,
    wh: Warehouse | None = None,
) -> dict[str, Any]:
    """Decide the day's actions for every customer scored on ``action_date`` and replace that partition.

    ``recommender(wh, rows) -> Series of comma-separated product ids`` fills ``recommended_products`` for
    the recommendation rows (default: ``pipelines.retention.recommend.recommend_products``).
    """
    from pipelines.warehouse import open_warehouse

    own = wh is None
    wh = wh or open_warehouse(config)
    try:
        context = load_context(wh, action_date)
        if context.empty:
            raise RetentionError(f"churn_scores has no rows for score_date {action_date}: run churn_scoring first")
        channels = sorted({a.channel for a in config.retention.actions if a.requires_consent and a.channel != "none"})
        consent = load_consent(wh, context["customer_id"].to_numpy(), channels, config.retention.consent_default)
        eligible = eligibility(config, context, consent.reindex(context["customer_id"].to_numpy()))
        plan = plan_assignments(config, context, eligible, action_date, policy)
        rec_rows = plan["action"] == "recommendation"
        if rec_rows.any():
            if recommender is None:
                from pipelines.retention.recommend import recommend_products

                def recommender(wh_, rows_):
                    return recommend_products(wh_, rows_, config)

            plan.loc[rec_rows, "recommended_products"] = recommender(wh, plan.loc[rec_rows]).to_numpy()
        plan["assigned_at"] = pd.Timestamp.now(tz="UTC")
        srm = check_sample_ratios(config, plan)
        wh.replace_partition(RETENTION_ACTIONS, plan, "action_date", action_date)
    finally:
        if own:
            wh.close()
    counts = plan["action"].value_counts().to_dict()
    spend = _worst_case_spend(config, plan)
    logger.info(
        "retention %s (%s): %d customers, actions %s, worst-case spend %.2f of %.2f",
        action_date,
        plan["policy_version"].iloc[0],
        len(plan),
        counts,
        spend,
        config.retention.budget_per_run,
    )
    return {
        "action_date": action_date.isoformat(),
        "rows": len(plan),
        "policy_version": str(plan["policy_version"].iloc[0]),
        "actions": {str(k): int(v) for k, v in counts.items()},
        "groups": {str(k): int(v) for k, v in plan["group"].value_counts().items()},
        "worst_case_spend": spend,
        **srm,
    }


def _worst_case_spend(config: Config, plan: pd.DataFrame) -> float:
    cost = {"none": 0.0, **{a.name: a.cost_per_contact + a.cost_when_redeemed for a in config.retention.actions}}
    return float(plan["action"].map(cost).sum())
