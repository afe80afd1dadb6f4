"""Regenerate configs/default.yaml from the typed config, so the documented defaults never drift."""

import json

import yaml

from pipelines.config import DEFAULT_CONFIG_PATH, Config

cfg = Config()
values = cfg.model_dump(mode="json")
out = [
    "# Churn platform configuration: every key with its default and what it means.",
    "# Environment variables override only URLs and secrets: CHURN_WAREHOUSE_URL, CHURN_WAREHOUSE_SCHEMA,",
    "# MLFLOW_TRACKING_URI. Pick another file with CHURN_CONFIG=path or --config path.",
    "",
]
for section, field in Config.model_fields.items():
    model = field.annotation
    out.append(f"{section}:")
    for name, f in model.model_fields.items():
        if f.description:
            out.append(f"  # {f.description}")
        val = values[section][name]
        if isinstance(val, dict) and val and all(isinstance(v, str) and len(v) > 40 for v in val.values()):
            # a name -> reason mapping reads best one entry a line
            out.append(f"  {name}:")
            for key, text in val.items():
                out.append(f"    {yaml.safe_dump({key: text}, default_flow_style=False, width=10_000).strip()}")
            continue
        dumped = yaml.safe_dump(
            {name: json.loads(json.dumps(val, default=str))}, default_flow_style=True, sort_keys=False
        ).strip()
        dumped = dumped[1:-1] if dumped.startswith("{") else dumped
        out.append(f"  {dumped}")
    out.append("")
DEFAULT_CONFIG_PATH.write_text("\n".join(out))
