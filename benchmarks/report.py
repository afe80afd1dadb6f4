"""Result files: ``<date>-<machine>.json`` (merged per scale) and the Markdown table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.targets import TARGETS, _fmt, judge

SCHEMA_VERSION = 1


def merge_run(path: Path, machine: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """Add ``run`` to the day's file: a run at a scale already there replaces that scale's stages."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "date": run["date"], "machine": machine, "runs": []}
    if path.exists():
        try:
            old = json.loads(path.read_text())
            if old.get("schema_version") == SCHEMA_VERSION:
                doc["runs"] = old.get("runs", [])
        except (OSError, ValueError):
            pass
    doc["machine"] = machine
    for existing in doc["runs"]:
        if existing.get("scale") == run["scale"]:
            existing["stages"].update(run["stages"])
            for key, value in run.items():
                if key != "stages":
                    existing[key] = value
            existing["targets"] = judge_all(existing, machine)
            break
    else:
        run["targets"] = judge_all(run, machine)
        doc["runs"].append(run)
    doc["runs"].sort(key=lambda r: r.get("customers", 0))
    return doc


def judge_all(run: dict[str, Any], machine: dict[str, Any]) -> list[dict[str, Any]]:
    return [judge(t, run, bool(machine.get("gpu"))) for t in TARGETS]


def _loads(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if lo == hi else f"{lo:.2f}-{hi:.2f}"


def render_markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    v = m["versions"]
    gpu = m["gpu"]["name"] if m.get("gpu") else "none"
    git = m.get("git", {})
    lines = [
        f"# Benchmarks {doc['date']} on `{m['name']}`",
        "",
        f"{m['cpu_cores']} CPU cores ({m['cpu_model']}; {m.get('cpu_matrix') or 'capability unknown'}), {m['memory_gib']} GiB RAM, GPU: {gpu}; "
        f"python {v['python']}, torch {v['torch']}, duckdb {v['duckdb']}, pandas {v['pandas']}, "
        f"transformers {v['transformers']}; commit `{(git.get('commit') or '?')[:10]}`"
        f"{' (+ uncommitted changes)' if git.get('dirty') else ''}.",
        "",
        *([f"CPU flags: {' '.join(m['cpu_flags'])}.", ""] if m.get("cpu_flags") else []),
        "Values are medians over the repeats shown in *runs*. **load1** is the 1-minute load average during the "
        f"stage: this machine has {m['cpu_cores']} cores shared with other users, so anything above "
        f"~{m['cpu_cores'] - 1} means the timings are noisy (slower than an idle machine would show).",
    ]
    lines += _summary(doc["runs"])
    for run in doc["runs"]:
        lines += ["", f"## Scale {run['scale']} ({run['customers']:,} customers), {run.get('started_at', '')}", ""]
        lines += ["| stage | metric | value | unit | runs | load1 | notes |", "|---|---|---:|---|---|---|---|"]
        for name, stage in run["stages"].items():
            if stage["status"] != "ok":
                lines.append(
                    f"| {name} | - | - | - | - | {_loads(stage.get('load_avg_1m', []))} | "
                    f"**{stage['status']}**: {_md(stage.get('reason', ''))[:200]} |"
                )
                continue
            first = True
            for key, metric in stage["metrics"].items():
                runs = metric.get("runs", [])
                runs_txt = ", ".join(_fmt(r) for r in runs) if len(runs) > 1 else ""
                note = _md(metric.get("description", ""))
                lines.append(
                    f"| {name if first else ''} | {key} | {_fmt(metric['value'])} | {metric['unit']} | "
                    f"{runs_txt} | {_loads(stage.get('load_avg_1m', [])) if first else ''} | {note} |"
                )
                first = False
            for note in stage.get("notes", []):
                lines.append(f"| {name} | note | | | | | {_md(note)[:240]} |")
        info_lines = _info_lines(run)
        if info_lines:
            lines += ["", *info_lines]
        lines += [
            "",
            f"### Targets at scale {run['scale']}",
            "",
            "| target | required | measured | status | detail |",
            "|---|---|---:|---|---|",
        ]
        for t in run.get("targets", []):
            status = {"met": "**met**", "missed": "**missed**"}.get(t["status"], t["status"])
            lines.append(f"| {t['target']} | {t['required']} | {t['measured']} | {status} | {_md(t['detail'])} |")
    lines += _cross_scale(doc["runs"])
    return "\n".join(lines) + "\n"


EXTRAPOLATIONS = (
    # (stage, metric, x key in stage info or "customers", x target, label)
    ("features", "duckdb_build_seconds", "orders_plus_events", 20_000_000, "feature build at ~20M orders+events"),
    ("features", "duckdb_build_seconds", "customers", 1_000_000, "feature build at 1M customers (this generator)"),
    ("memory", "peak_rss_lightgbm_mb", "customers", 1_000_000, "scoring peak RSS at 1M customers, LightGBM"),
    (
        "memory",
        "peak_rss_transformer_estimate_mb",
        "customers",
        1_000_000,
        "scoring peak RSS at 1M customers, transformer (estimate)",
    ),
)


def extrapolate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Straight line through the two largest measured scales, evaluated at the target size."""
    out = []
    for stage, metric, x_key, x_target, label in EXTRAPOLATIONS:
        points = []
        for run in runs:
            st = run["stages"].get(stage)
            if not st or st.get("status") != "ok" or metric not in st.get("metrics", {}):
                continue
            x = run["customers"] if x_key == "customers" else st.get("info", {}).get(x_key)
            if x:
                points.append((float(x), st["metrics"][metric]["value"], run["scale"]))
        points.sort()
        if len(points) < 2 or points[-1][0] >= x_target:
            continue
        (x0, y0, s0), (x1, y1, s1) = points[-2], points[-1]
        if x1 == x0:
            continue
        slope = (y1 - y0) / (x1 - x0)
        out.append(
            {
                "label": label,
                "metric": f"{stage}.{metric}",
                "value": y1 + slope * (x_target - x1),
                "from": f"scales {s0} and {s1}",
            }
        )
    return out


def _summary(runs: list[dict[str, Any]]) -> list[str]:
    """One row per target: the largest scale where it was judged, else the most informative note."""
    if not runs:
        return []
    lines = [
        "",
        "## Targets: summary over all scales measured today",
        "",
        "| target | required | measured | scale | status | detail |",
        "|---|---|---:|---|---|---|",
    ]
    ordered = sorted(runs, key=lambda r: r.get("customers", 0), reverse=True)
    for i, _ in enumerate(ordered[0].get("targets", [])):
        picks = [
            (run, t) for run in ordered for t in run.get("targets", []) if t["key"] == ordered[0]["targets"][i]["key"]
        ]
        run, t = next((p for p in picks if p[1]["status"] in ("met", "missed")), None) or next(
            (p for p in picks if p[1]["measured"]), picks[0]
        )
        status = {"met": "**met**", "missed": "**missed**"}.get(t["status"], t["status"])
        lines.append(
            f"| {t['target']} | {t['required']} | {t['measured']} | {run['scale'] if t['measured'] else ''} | {status} | "
            f"{_md(t['detail'])} |"
        )
    return lines


def _cross_scale(runs: list[dict[str, Any]]) -> list[str]:
    rows = extrapolate(runs)
    if not rows:
        return []
    lines = [
        "",
        "## Extrapolations (not measurements)",
        "",
        "Straight line through the two largest scales measured on this machine today.",
        "",
        "| what | metric | extrapolated | from |",
        "|---|---|---:|---|",
    ]
    lines += [f"| {r['label']} | {r['metric']} | {_fmt(r['value'])} | {r['from']} |" for r in rows]
    return lines


def _info_lines(run: dict[str, Any]) -> list[str]:
    out = []
    stages = run["stages"]
    gen = stages.get("gen") or stages.get("features")
    if gen and gen.get("status") == "ok":
        rc = gen["info"].get("row_counts", {})
        out.append(
            f"- data: {rc.get('customers', 0):,} customers, {rc.get('orders', 0):,} orders, "
            f"{rc.get('events', 0):,} events, {rc.get('order_items', 0):,} order items, "
            f"{rc.get('reviews', 0):,} reviews"
        )
    feat = stages.get("features")
    if feat and feat.get("status") == "ok":
        out.append(
            f"- features: {feat['info'].get('feature_rows') or 0:,} population rows at {feat['info'].get('score_date')}, "
            f"mean text view {feat['info'].get('mean_text_view_chars')} chars"
        )
    score = stages.get("score")
    if score and score.get("status") == "ok":
        i = score["info"]
        out.append(
            f"- score: {i.get('customers_scored'):,} customers, batch {i.get('batch_size')}, max_length "
            f"{i.get('max_length')}, input: {i.get('input')}; model: {i.get('model')}; labels: {i.get('labels')}"
        )
        tok = i.get("tokens", {})
        lengths = tok.get("lengths", {})
        out.append(
            f"- score: tokens per customer mean {lengths.get('mean', 0):.0f}, p90 {lengths.get('p90', 0):.0f}, "
            f"{lengths.get('share_truncated_at_max', 0):.0%} truncated at max_length; padding share of computed "
            f"tokens: fixed {tok.get('fixed', {}).get('pad_share', 0):.0%}, bucketed "
            f"{tok.get('bucketed', {}).get('pad_share', 0):.0%}"
        )
        if i.get("default_path"):
            out.append(
                f"- score: default path = {i['default_path']}; bundle trained at {i.get('bundle_max_length')} "
                f"tokens, scored at {i.get('max_length')}"
            )
        for variant in [k.removesuffix("_ranking_checks") for k in i if k.endswith("_ranking_checks")]:
            checks = i.get(f"{variant}_ranking_checks", {})
            out.append(
                f"- score: {variant} ranking unchanged to 2 decimals vs fixed_fp32: "
                f"{'yes' if i.get(f'{variant}_ranking_unchanged_2dp') else 'NO'} "
                f"({', '.join(f'{k} {v}' for k, v in checks.items())})"
            )
    train = stages.get("train")
    if train and train.get("status") == "ok":
        i = train["info"]
        out.append(
            f"- train: {i.get('device')} {i.get('precision')}, batch {i.get('batch_size')} x "
            f"{i.get('sequence_length')} tokens, {i.get('params', 0):,} params, {i.get('timed_steps')} timed steps; "
            f"{i.get('loop')}"
        )
    return out


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
