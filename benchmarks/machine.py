"""Describe the machine and software a result was measured on."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
from typing import Any

from benchmarks.common import PROJECT_ROOT, load1


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:
        return None
    return getattr(mod, "__version__", None)


def _memory_gib() -> float:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):  # pragma: no cover
        return float("nan")


def _cpu_model() -> str:
    """The model name plus family / model / stepping: a cloud VM's "AMD EPYC" alone does not say which generation."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model", "stepping") and key not in fields:
                    fields[key] = value.strip()
                if not line.strip() and fields:
                    break
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')}, stepping {fields.get('stepping', '?')})"
    return name


def _cpu_flags() -> list[str]:
    """The CPU's vector / matrix flags (fma, f16c, avx2, avx_vnni, avx512*, amx*): what the scoring kernels can use
    (VNNI decides whether ONNX Runtime's int8 kernels need 7-bit weights)."""
    from pipelines.models.device import cpu_flags

    wanted = re.compile(r"fma|f16c|avx2|avx_vnni|avx512[a-z_0-9]*|amx[a-z_0-9]*")
    return sorted(f for f in cpu_flags() or () if wanted.fullmatch(f))


def _git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except Exception:
        return {"commit": None, "dirty": None}


def gpu_info() -> dict[str, Any] | None:
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        props = torch.cuda.get_device_properties(0)
        return {
            "name": props.name,
            "count": torch.cuda.device_count(),
            "memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
            "bf16": torch.cuda.is_bf16_supported(),
        }
    except Exception:
        return None


def short_name(cores: int, mem_gib: float, gpu: dict[str, Any] | None) -> str:
    """Hostname-ish name for result files: ``<host>-<cores>c<mem>g[-<gpu>]`` (override: CHURN_BENCH_MACHINE)."""
    if os.environ.get("CHURN_BENCH_MACHINE"):
        return re.sub(r"[^A-Za-z0-9_.-]", "-", os.environ["CHURN_BENCH_MACHINE"])
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0].lower())[:20] or "host"
    name = f"{host}-{cores}c{round(mem_gib):d}g"
    if gpu:
        model = re.search(r"(H100|H200|A100|L4|A10G|T4|V100|RTX ?\d+)", gpu["name"], re.I)
        name += "-" + (model.group(1).replace(" ", "").lower() if model else "gpu")
    return name


def machine_info() -> dict[str, Any]:
    cores = os.cpu_count() or 1
    mem = _memory_gib()
    gpu = gpu_info()
    torch_threads, cpu_matrix = None, None
    try:
        import torch

        from pipelines.models.device import cpu_has_native_bf16

        torch_threads = torch.get_num_threads()
        # what decides the CPU scoring path: vector width and native bf16 matrix units (AMX / AVX512-BF16)
        cpu_matrix = (
            f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {'yes' if cpu_has_native_bf16() else 'no'}"
        )
    except Exception:
        pass
    return {
        "name": short_name(cores, mem, gpu),
        "hostname": socket.gethostname(),
        "cpu_cores": cores,
        "cpu_model": _cpu_model(),
        "cpu_matrix": cpu_matrix,
        "cpu_flags": _cpu_flags(),
        "isa_caps": {k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if k in os.environ},
        "memory_gib": mem,
        "gpu": gpu,
        "os": platform.platform(),
        "torch_threads": torch_threads,
        "load_avg_1m_at_start": load1(),
        "versions": {
            "python": sys.version.split()[0],
            "torch": _version("torch"),
            "duckdb": _version("duckdb"),
            "pandas": _version("pandas"),
            "transformers": _version("transformers"),
            "pyarrow": _version("pyarrow"),
            "lightgbm": _version("lightgbm"),
            "psycopg": _version("psycopg"),
            "onnxruntime": _version("onnxruntime"),
        },
        "git": _git_commit(),
    }
