"""What `make demo` shows after each stage: the results a user came for, read back from where the platform
wrote them (training-set manifest, MLflow run and registry, churn_scores, monitoring_drift).

    python scripts/demo_report.py training AS_OF | scoring DATE | monitoring DATE

Plain prints: this is console output for people, not library code.
"""

from __future__ import annotations

import json
import sys

from pipelines.config import load_config


def training(as_of: str) -> None:
    from pipelines.datasets.build import MANIFEST_NAME
    from pipelines.registry.summary import candidate_comparison
    from pipelines.registry.versions import list_versions

    config = load_config()
    manifest = json.loads((config.resolve_path(config.dataset.output_dir) / as_of / MANIFEST_NAME).read_text())
    print(f"Training sets as of {as_of} (point in time: features before each cutoff, labels after it)")
    print(f"  {'split':<8} {'cutoffs':<24} {'customers':>10} {'churn rate':>11}")
    for name, cut in manifest["cutoffs"].items():
        stats = manifest["splits"][name]
        span = cut[0] if len(cut) == 1 else f"{cut[0]} .. {cut[-1]}"
        rate = "n/a" if stats["churn_rate"] is None else f"{stats['churn_rate']:.1%}"
        print(f"  {name:<8} {span:<24} {stats['rows']:>10,} {rate:>11}")

    versions = [v for v in list_versions(config) if str(v.get("as_of") or "") == as_of] or list_versions(config)
    if not versions:
        print("No registered version.")
        return
    newest = versions[0]
    run_id = newest.get("run_id")
    table = candidate_comparison(config, run_id) if run_id else {}
    kinds = table.get("kinds") or []
    if table.get("rows"):
        print("\nCandidates on the same test customers (higher is better except brier / ece)")
        print(f"  {'metric':<12} " + " ".join(f"{k + ' ' + s:>18}" for k in kinds for s in ("val", "test")))
        for metric, values in table["rows"].items():
            cells = " ".join(f"{'-' if v is None else f'{v:.3f}':>18}" for v in values)
            print(f"  {metric:<12} {cells}")
    chosen = table.get("chosen") or newest.get("kind")
    print(f"\nWinner: {chosen} (registered as {config.registry.model_name} version {newest['version']})")
    if table.get("notes"):
        print(f"Why: {table['notes']}")
    from pipelines.registry.versions import VTAG_REASONS, registry_client

    tags = registry_client(config).get_model_version(config.registry.model_name, newest["version"]).tags or {}
    gate, reasons = newest.get("gate"), tags.get(VTAG_REASONS)
    promoted = "champion" in (newest.get("aliases") or [])
    print(f"Promotion gate: {'promoted to @champion' if promoted else 'not promoted'}" + (f" ({gate})" if gate else ""))
    if reasons:
        print(f"  {reasons}")


def scoring(date: str) -> None:
    from pipelines.warehouse import open_warehouse

    config = load_config()
    order = [n for n, _ in sorted(config.scoring.risk_tiers.items(), key=lambda kv: kv[1])]
    with open_warehouse(config) as wh:
        frame = wh.query_df(
            wh.render(
                "SELECT risk_tier, COUNT(*) AS n, MIN(model_version) AS v FROM {churn_scores} "
                "WHERE score_date = :d GROUP BY risk_tier"
            ),
            {"d": date},
        )
    counts = dict(zip(frame["risk_tier"], frame["n"], strict=True))
    total = sum(counts.values()) or 1
    version = frame["v"].iloc[0] if len(frame) else "?"
    print(f"Scored {total:,} customers on {date} with model version {version}; risk tiers:")
    for tier in order + sorted(set(counts) - set(order)):
        n = int(counts.get(tier, 0))
        print(f"  {tier:<8} {n:>8,}  {n / total:6.1%}")
    try:
        analyst(config, date)
    except Exception as exc:  # the tiers above stand on their own
        print(f"  (reasons/segments/sentiment not readable: {exc})")


def analyst(config, date: str) -> None:
    """What churn_score_reasons, customer_segments and review_sentiment hold for the day."""
    from pipelines.warehouse import open_warehouse

    with open_warehouse(config) as wh:
        q = wh.render
        reasons = wh.query_df(
            q(
                "SELECT s.risk_tier, COUNT(DISTINCT s.customer_id) AS customers, COUNT(r.customer_id) AS reasons "
                "FROM {churn_scores} s LEFT JOIN {churn_score_reasons} r ON r.score_date = s.score_date "
                "AND r.customer_id = s.customer_id WHERE s.score_date = :d GROUP BY s.risk_tier"
            ),
            {"d": date},
        )
        segments = wh.query_df(
            q(
                "SELECT segment_name, COUNT(*) AS n FROM {customer_segments} WHERE score_date = :d GROUP BY 1 ORDER BY 2 DESC"
            ),
            {"d": date},
        )
        sentiment = wh.query_df(q("SELECT COUNT(*) AS n, COUNT(sentiment) AS scored FROM {review_sentiment}"))
        top = wh.query_df(
            q(
                "SELECT s.customer_id, s.churn_probability, s.value_at_risk, r.text FROM {churn_scores} s "
                "JOIN {churn_score_reasons} r ON r.score_date = s.score_date AND r.customer_id = s.customer_id "
                "AND r.rank = 1 WHERE s.score_date = :d ORDER BY s.value_at_risk DESC NULLS LAST LIMIT 3"
            ),
            {"d": date},
        )
    for row in reasons.itertuples():
        print(f"  reasons: {row.risk_tier:<8} {row.customers:>6,} customers, {row.reasons:>6,} reasons")
    print(f"Segments: {len(segments)} ({', '.join(f'{r.segment_name} {r.n:,}' for r in segments.itertuples())})")
    print(f"Review sentiment: {int(sentiment['scored'].iloc[0]):,} of {int(sentiment['n'].iloc[0]):,} rows scored")
    for row in top.itertuples():
        print(
            f"  customer {row.customer_id}: p {row.churn_probability:.2f}, value at risk {row.value_at_risk:.2f}: {row.text}"
        )


def monitoring(date: str) -> None:
    from pipelines.contract import DATASET_LEVEL_FEATURE
    from pipelines.warehouse import open_warehouse

    config = load_config()
    with open_warehouse(config) as wh:
        frame = wh.query_df(
            wh.render(
                "SELECT metric, feature, note FROM {monitoring_drift} WHERE score_date = :d "
                "AND metric IN ('retrain', 'retrain_reason') ORDER BY metric, feature"
            ),
            {"d": date},
        )
    verdict = frame[(frame["metric"] == "retrain") & (frame["feature"] == DATASET_LEVEL_FEATURE)]
    if verdict.empty:
        print(f"No drift verdict for {date}.")
        return
    print(f"Drift verdict for {date}: {verdict['note'].iloc[0]}")
    for reason in frame[frame["metric"] == "retrain_reason"]["note"]:
        print(f"  - {reason}")


if __name__ == "__main__":
    command, value = sys.argv[1], sys.argv[2]
    {"training": training, "scoring": scoring, "monitoring": monitoring}[command](value)
