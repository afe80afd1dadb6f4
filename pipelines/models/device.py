"""The one place that picks the torch device, mixed precision, CPU threads and the DDP context.

Why one place: training, validation and scoring must agree on device and precision, and a
``torchrun`` job must put each rank on its own GPU.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import platform
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Rank layout of this process; world_size 1 when not launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_context_from_env() -> DistContext:
    return DistContext(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def resolve_device(preference: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """auto -> CUDA when available else CPU; under DDP each rank gets ``cuda:LOCAL_RANK``."""
    if isinstance(preference, torch.device):
        return preference
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {preference!r} requested but CUDA is not available")
        if preference == "cuda":
            rank = dist_context_from_env().local_rank if local_rank is None else local_rank
            return torch.device("cuda", rank)
    return torch.device(preference)


TRAINING_PRECISIONS = ("auto", "fp32", "bf16")


def bf16_enabled(device: torch.device, requested: bool, cpu_precision: str = "fp32") -> bool:
    """Whether training / evaluation on ``device`` runs under bf16 autocast.

    CUDA: ``requested`` (``training.bf16_on_gpu``) on cards that support bf16. CPU: ``cpu_precision``
    (``training.precision``): ``bf16`` always, ``auto`` only where the CPU computes bf16 natively
    (AMX / AVX512-BF16; emulated bf16 is slower than fp32), ``fp32`` never.
    """
    if device.type == "cuda":
        return requested and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    if cpu_precision not in TRAINING_PRECISIONS:
        raise ValueError(f"unknown training precision {cpu_precision!r}; expected one of {TRAINING_PRECISIONS}")
    return cpu_precision == "bf16" or (cpu_precision == "auto" and cpu_has_native_bf16())


def autocast_context(device: torch.device, bf16: bool = True, cpu_precision: str = "fp32"):
    """bf16 autocast where :func:`bf16_enabled` says so (weights and optimizer state stay fp32); else a no-op."""
    if bf16_enabled(device, bf16, cpu_precision):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


INFERENCE_PRECISIONS = ("auto", "fp32", "bf16", "int8", "onnx", "onnx-int8")
ONNX_PRECISIONS = ("onnx", "onnx-int8")
# What ``auto`` picks on CPU when onnxruntime is installed (measured in benchmarks/stages/score.py).
AUTO_ONNX_PRECISION = "onnx"


def onnxruntime_installed() -> bool:
    """True when the optional ONNX Runtime backend can be imported (without importing it here)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def cpu_has_native_bf16() -> bool:
    """True on CPUs whose matrix units compute bf16 natively (Intel AMX or AVX512-BF16).

    Why it matters: there bf16 matmuls run several times faster than fp32 (oneDNN picks AMX tiles);
    elsewhere (AVX2-only cores, most AMD parts before Zen 4) bf16 is emulated and slower than fp32.
    """
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if cap in ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"):
        return False  # oneDNN told not to use the bf16 instructions: bf16 would be emulated
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


INT8_DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
X86_MACHINES = ("x86_64", "amd64", "i386", "i686", "x86")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str] | None:
    """The first CPU's feature flags from /proc/cpuinfo (Linux), or None where they cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_has_int8_dot_product() -> bool:
    """True where int8 matrix multiplies accumulate without int16 saturation: x86 with VNNI / AMX-INT8, and non-x86.

    Why it matters: without VNNI, ONNX Runtime's u8s8 GEMM on x86 multiplies with VPMADDUBSW, which adds two
    u8 x s8 products into a saturating int16, so full-range 8-bit weights overflow it. The documented remedy is
    7-bit weights (``reduce_range``): on a tiny BERT on an AVX2-only AMD EPYC it cut the largest probability
    change of the int8 graph from 0.016 to 0.001. An x86 CPU whose flags cannot be read counts as without VNNI
    (7-bit weights cost one bit of resolution, never an overflow).
    """
    if platform.machine().lower() not in X86_MACHINES:
        return True  # Arm's int8 dot products (sdot / i8mm) accumulate in int32
    flags = cpu_flags()
    return bool(flags) and any(flag in flags for flag in INT8_DOT_PRODUCT_FLAGS)


def torch_cpu_precision() -> str:
    """The fastest PyTorch CPU precision that needs no accuracy trade-off: bf16 with native bf16, else fp32."""
    return "bf16" if cpu_has_native_bf16() else "fp32"


def resolve_inference_precision(device: torch.device, requested: str = "auto") -> str:
    """The numeric precision / backend scoring runs in on ``device``: ``fp32``, ``bf16``, ``int8``, ``onnx``, ``onnx-int8``.

    ``auto``: bf16 on CUDA cards that support it (autocast) and on CPUs with native bf16 matmul (if it
    fails the fp32 check, the predictor tries the ONNX graph before fp32); on other CPUs the ONNX
    Runtime fp32 graph when onnxruntime is installed, else fp32. ``int8`` (dynamic quantization) and the ONNX Runtime variants
    exist on CPU only and fall back to fp32 elsewhere.
    """
    if requested not in INFERENCE_PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; expected one of {INFERENCE_PRECISIONS}")
    if device.type == "cuda":
        if requested in ("auto", "bf16") and torch.cuda.is_bf16_supported():
            return "bf16"
        if requested == "int8" or requested in ONNX_PRECISIONS:
            logger.info("%s is a CPU optimisation; scoring on %s in fp32", requested, device)
        return "fp32"
    if requested == "auto":
        if device.type != "cpu":
            return "fp32"
        if cpu_has_native_bf16():
            return "bf16"  # measured as fast as the ONNX graph there; the predictor falls back to onnx
        return AUTO_ONNX_PRECISION if onnxruntime_installed() else "fp32"
    if requested == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        logger.warning(
            "precision bf16 requested on a CPU without native bf16 (no AMX / AVX512-BF16): it is "
            "emulated and usually slower than fp32"
        )
    return requested


def configure_threads(num_threads: int | None) -> None:
    if num_threads:
        torch.set_num_threads(num_threads)
        logger.info("torch CPU threads: %d", num_threads)


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (all devices); call before building the model."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def init_distributed(device: torch.device) -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU)."""
    ctx = dist_context_from_env()
    if not ctx.enabled:
        return ctx
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        logger.info("joined process group: rank %d/%d (%s)", ctx.rank, ctx.world_size, backend)
    return ctx
