"""Stage retention: the retention experiment on the simulator, against its ground truth.

Two campaign cycles on freshly generated sample data (history 2024-01-01 .. 2025-12-31):

1. 2026-01-01: cold-start rules with exploration assign every scored customer; the simulator plays
   out the next 30 days; outcomes and effects are measured. Figure: does each action's 95% CI of the
   retention uplift (CUPED + IPW against the holdout) cover its true average effect over the same
   population? And does each off-policy estimate of the random policy's value cover its true value?
2. Both learners (``fitted_q``, ``dr``) are fitted on cycle 1 and choose actions for the customers
   scored on 2026-01-31, which they never saw. Their true incremental net value per customer (vs doing
   nothing; the simulator's exact probabilities, no sampling noise) is compared with the oracle policy
   (knows the true effects), random assignment and "target the top risk decile" (the rule's action
   for the riskiest 10%).

Churn scores are a fixed formula of recency and frequency (a stand-in: this stage measures the
retention logic, not the churn model). The budget is lifted so the policies are compared unconstrained;
exploration is 0.5 (the default 0.2 gives the learners 2.5x fewer random rows per action).
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd

from benchmarks.common import Context, StageResult

D1 = dt.date(2026, 1, 1)
D2 = dt.date(2026, 1, 31)
LOGNORMAL_MEAN = float(np.exp(0.25**2 / 2))  # the simulator's order-value noise has mean > 1


def _write_scores(wh, config, day: dt.date) -> None:
    from pipelines.contract import CHURN_SCORES
    from pipelines.data.simulation import customer_traits
    from pipelines.scoring.batch import assign_risk_tiers

    traits = customer_traits(wh, day)
    active = traits[traits["orders_365d"] > 0]
    p = 1 / (1 + np.exp(-(-1.0 + active["days_since_last_order"] / 60 - 0.3 * active["orders_90d"])))
    wh.replace_partition(
        CHURN_SCORES,
        pd.DataFrame(
            {
                "customer_id": active["customer_id"],
                "score_date": day,
                "churn_probability": p,
                "risk_tier": assign_risk_tiers(p, config.scoring.risk_tiers),
                "model_name": "formula",
                "model_version": "0",
                "run_id": "benchmark",
                "scored_at": pd.Timestamp.now(tz="UTC"),
            }
        ),
        "score_date",
        day,
    )


def _true_net(config, truth: pd.DataFrame) -> np.ndarray:
    """True expected net value (rows x actions) of each action, from the simulator's probabilities."""
    value = truth["order_value"].to_numpy() * LOGNORMAL_MEAN * config.retention.margin_rate
    cols = []
    for name in config.retention.action_names:
        action = None if name == "none" else config.retention.action(name)
        redeem = action.cost_when_redeemed if action else 0.0
        contact = action.cost_per_contact if action else 0.0
        cols.append(truth[f"p_{name}"].to_numpy() * (value - redeem) - contact)
    return np.column_stack(cols)


def run(ctx: Context) -> StageResult:
    from pipelines.data.generator import generate_sample_data
    from pipelines.data.simulation import customer_traits, play_out, true_effects
    from pipelines.retention import assign_actions, compute_effects, measure_outcomes
    from pipelines.retention.assign import eligibility, rules_policy
    from pipelines.retention.context import load_consent, load_context
    from pipelines.retention.effects import load_measured
    from pipelines.retention.policy import fit_policy
    from pipelines.warehouse import connect

    result = StageResult("retention")
    config = ctx.config(
        warehouse={"url": f"duckdb:///{ctx.work_dir}/retention-{ctx.scale}.duckdb"},
        retention={"budget_per_run": 1e9, "exploration_share": 0.5, "reports_dir": str(ctx.work_dir / "retention")},
    )
    names = config.retention.action_names
    started = time.perf_counter()
    with connect(config.warehouse_url, None) as wh:
        wh.drop_schema()
        wh.init_schema()
        generate_sample_data(wh, customers=ctx.customers, seed=42, start=dt.date(2024, 1, 1), end=D1 - dt.timedelta(1))
        _write_scores(wh, config, D1)
        t0 = time.perf_counter()
        assign_actions(config, D1, wh=wh, recommender=lambda _wh, rows: pd.Series("", index=rows.index))
        assign_s = time.perf_counter() - t0
        actions = wh.query_df(wh.render("SELECT * FROM {retention_actions} WHERE action_date = :d"), {"d": D1})
        truth = play_out(
            wh, actions[["customer_id", "action"]], D1, config.retention.horizon_days, seed=3, actions=names
        )
        measure_outcomes(config, D1 + dt.timedelta(days=config.retention.horizon_days), wh=wh)
        t0 = time.perf_counter()
        rows = compute_effects(config, D1, wh=wh)
        effects_s = time.perf_counter() - t0
        frame = load_measured(wh, D1)

        # 1. CI coverage of each action's true average effect over its comparison population.
        merged = actions.merge(truth, on=["customer_id", "action"])
        covered = []
        for row in (r for r in rows if r["kind"] == "action_effect"):
            eligible = merged["eligible_actions"].str.split(",").apply(lambda s, a=row["action"]: a in s)
            true = float((merged.loc[eligible, f"p_{row['action']}"] - merged.loc[eligible, "p_none"]).mean())
            ok = row["ci_low"] <= true <= row["ci_high"]
            covered.append(ok)
            result.info[f"effect_{row['action']}"] = {
                "true": round(true, 4),
                "estimate": round(row["uplift"], 4),
                "ci": [round(row["ci_low"], 4), round(row["ci_high"], 4)],
                "n_treated": row["n"],
                "covered": ok,
            }
        result.add("uplift_ci_coverage", float(np.mean(covered)), "share", "actions whose 95% CI covers the truth")

        # Off-policy estimates of the random policy vs its true value on the logged rows.
        logged = merged[merged["group"] != "holdout"].reset_index(drop=True)
        net1 = _true_net(config, logged)
        elig1 = np.array([[n in s.split(",") for n in names] for s in logged["eligible_actions"]])
        true_random = float((np.where(elig1, net1, 0).sum(axis=1) / elig1.sum(axis=1)).mean())
        ope = {r["estimator"]: r for r in rows if r["kind"] == "policy_value" and r["action"] == "random"}
        result.info["ope_random"] = {"true": round(true_random, 3)} | {
            k: [round(v["uplift"], 3), round(v["ci_low"], 3), round(v["ci_high"], 3)] for k, v in ope.items()
        }
        result.add(
            "ope_ci_coverage",
            float(np.mean([v["ci_low"] <= true_random <= v["ci_high"] for v in ope.values()])),
            "share",
            "IPS/SNIPS/DR CIs of the random policy's value that cover its true value",
        )

        # 2. Policies on the next date's population (out of sample).
        _write_scores(wh, config, D2)
        context = load_context(wh, D2)
        consent = load_consent(wh, context["customer_id"].to_numpy(), ["email", "phone"], True)
        eligible = eligibility(config, context, consent)
        truth2 = context[["customer_id"]].merge(true_effects(customer_traits(wh, D2), names), on="customer_id")
    net = _true_net(config, truth2)
    gain = net - net[:, [0]]
    n = len(gain)
    rows_idx = np.arange(n)
    oracle = float(np.where(eligible, gain, -np.inf).max(axis=1).mean())
    values = {"oracle": oracle}
    values["random"] = float((np.where(eligible, gain, 0).sum(axis=1) / eligible.sum(axis=1)).mean())
    risk = context["churn_probability"].to_numpy()
    top = risk >= np.quantile(risk, 0.9)
    values["top_risk_decile"] = float(gain[rows_idx, np.where(top, rules_policy(config, context, eligible), 0)].mean())
    values["rules_all"] = float(gain[rows_idx, rules_policy(config, context, eligible)].mean())
    fit_s = {}
    for learner in ("fitted_q", "dr"):
        t0 = time.perf_counter()
        policy = fit_policy(config, frame, learner=learner)
        fit_s[learner] = time.perf_counter() - t0
        _, predicted = policy.predict(context)
        chosen = np.where(eligible, predicted, -np.inf)
        chosen[:, 0] = 0.0
        values[f"learned_{learner}"] = float(gain[rows_idx, chosen.argmax(axis=1)].mean())
    for key, value in values.items():
        result.add(f"net_value_{key}", value, "per customer", f"true incremental net value vs none, {key}")
    for learner in ("fitted_q", "dr"):
        result.add(
            f"share_of_oracle_{learner}",
            values[f"learned_{learner}"] / oracle if oracle > 0 else float("nan"),
            "share",
            f"learned policy ({learner}) net value / oracle net value",
        )
    result.add("assign_seconds", assign_s, "s", f"assign {len(actions):,} customers (cold start)")
    result.add("effects_seconds", effects_s, "s", "effects + policy values of one action date")
    result.add("fit_seconds_fitted_q", fit_s["fitted_q"], "s", "fit the fitted_q policy")
    result.info.update(
        {
            "customers_scored_d1": int(len(actions)),
            "customers_scored_d2": int(n),
            "default_learner": config.retention.learner,
            "exploration_share": config.retention.exploration_share,
            "holdout_share": config.retention.holdout_share,
            "churn_scores": "formula stand-in (recency, frequency)",
        }
    )
    result.wall_seconds = time.perf_counter() - started
    return result
