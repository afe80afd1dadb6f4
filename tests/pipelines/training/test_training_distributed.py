"""Two-process DistributedDataParallel on CPU (gloo) through the real torchrun launcher."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from pipelines.config import PROJECT_ROOT

SCRIPT = textwrap.dedent("""
    import json, logging, sys
    logging.basicConfig(level=logging.WARNING)
    from pipelines.config import Config
    from tests.helpers.synthetic import make_sets
    from pipelines.models.device import dist_context_from_env
    from pipelines.training.distributed import run, summary

    encoder, out = sys.argv[1], sys.argv[2]
    cfg = Config().with_overrides({
        "model": {"encoder": encoder, "max_length": 32, "head_hidden": [16]},
        "training": {"epochs": 1, "batch_size": 16, "eval_batch_size": 64, "num_threads": 1, "baseline_rounds": 20},
    })
    result = run(cfg, make_sets(n_train=160, n_val=80, n_test=10, seed=3, max_orders=3), out)
    ctx = dist_context_from_env()
    with open(f"{out}/rank{ctx.rank}.json", "w") as fh:
        json.dump(summary(result), fh, default=str)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.training
def test_torchrun_two_cpu_processes(tiny_encoder_dir, tmp_path):
    script = tmp_path / "ddp_job.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(script),
        tiny_encoder_dir,
        str(out),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((out / "rank0.json").read_text())
    r1 = json.loads((out / "rank1.json").read_text())
    assert r0 == r1  # rank 0's result is broadcast
    assert (out / "transformer" / "head.safetensors").is_file() and (out / "baseline" / "model.txt").is_file()
    assert r0["transformer"]["history"][0]["samples_per_s"] > 0
