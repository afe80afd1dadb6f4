"""Where training runs under bf16 autocast: CUDA per training.bf16_on_gpu, CPU per training.precision."""

from __future__ import annotations

import pytest
import torch

from pipelines.models import device as device_mod

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("precision", "native", "expected"),
    [
        ("auto", True, True),
        ("auto", False, False),  # emulated bf16 is slower than fp32: auto stays fp32
        ("bf16", False, True),  # asked for explicitly: honoured
        ("fp32", True, False),
    ],
)
def test_cpu_training_autocast_follows_training_precision(monkeypatch, precision, native, expected):
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: native)
    assert device_mod.bf16_enabled(CPU, True, precision) is expected
    layer = torch.nn.Linear(4, 2)
    with device_mod.autocast_context(CPU, True, precision):
        out = layer(torch.ones(3, 4))
    assert out.dtype == (torch.bfloat16 if expected else torch.float32)
    assert layer.weight.dtype == torch.float32  # autocast never changes the stored weights


def test_bf16_on_gpu_does_not_switch_cpu_training(monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: True)
    assert device_mod.bf16_enabled(CPU, True) is False  # the CPU default of the argument is fp32


def test_unknown_training_precision_is_refused():
    with pytest.raises(ValueError, match="unknown training precision 'fp16'"):
        device_mod.bf16_enabled(CPU, True, "fp16")


@pytest.mark.parametrize(
    ("machine", "flags", "expected"),
    [
        ("x86_64", {"avx2", "fma"}, False),  # AVX2-only (e.g. AMD EPYC Milan): VPMADDUBSW saturates
        ("x86_64", {"avx2", "avx512f", "avx512_vnni"}, True),
        ("x86_64", {"avx2", "avx_vnni"}, True),
        ("x86_64", {"avx2", "amx_tile", "amx_int8"}, True),
        ("x86_64", None, False),  # flags unreadable: assume the saturating kernel
        ("aarch64", None, True),
    ],
)
def test_int8_dot_product_follows_the_cpu_flags(monkeypatch, machine, flags, expected):
    monkeypatch.setattr(device_mod.platform, "machine", lambda: machine)
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: None if flags is None else frozenset(flags))
    assert device_mod.cpu_has_int8_dot_product() is expected
