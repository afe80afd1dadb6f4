#!/usr/bin/env bash
# The GPU figures of issue 15 in one short run, on a lent GPU machine (a bare image with torch, transformers,
# pandas; no network). Prepare first, here: `.venv/bin/python -m scripts.gpu_pack` writes .gpu/ (bundle, labelled
# rows, wheels). Then one device call: run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=480).
#
# Writes $OUT (the device tool's result folder; reports/gpu here): the benchmark's JSON + Markdown, nvidia-smi's
# view of the card and the log. Exit: 0 measured; 2 .gpu/ missing; 1 the benchmark failed (see the log).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-reports/gpu}"
mkdir -p "$OUT"
if [ ! -f .gpu/bundle/bundle.json ] || [ ! -f .gpu/frame.parquet ]; then
  echo "gpu_check: .gpu/ is missing or incomplete: run 'python -m scripts.gpu_pack' first and carry .gpu" >&2
  exit 2
fi
PYTHON="${PYTHON:-python3}"
SITE=/tmp/churn-gpu-site
if compgen -G ".gpu/wheels/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .gpu/wheels/*.whl \
    || { echo "gpu_check: installing the carried wheels failed" >&2; exit 1; }
fi
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The scoring job tokenizes with every core (the fast tokenizer's default); the harness would turn that off.
export TOKENIZERS_PARALLELISM=true
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
  "$PYTHON" -c 'import sys, torch, transformers, pandas, numpy; print(sys.version.split()[0], "torch", torch.__version__,
"transformers", transformers.__version__, "pandas", pandas.__version__, "numpy", numpy.__version__)'
} >"$OUT/versions.txt" 2>&1
cat "$OUT/versions.txt"
"$PYTHON" -m benchmarks --stages gpu --bundle .gpu/bundle --gpu-frame .gpu/frame.parquet --score-max-length 128 \
  --postgres-url none --out "$OUT" --work-dir /tmp/churn-gpu-bench 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
