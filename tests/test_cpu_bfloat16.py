"""bfloat16 on a CPU is opt-in, and asking for it where the CPU would emulate it warns."""

from __future__ import annotations

import warnings

import pytest
import torch

from pytest_forgetting.backends.hf import device


def test_auto_stays_float32_on_a_cpu() -> None:
    assert device.resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_bfloat16_without_native_support_warns(monkeypatch) -> None:
    monkeypatch.setattr(device, "cpu_has_bfloat16", lambda: False)
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert device.resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16


def test_bfloat16_with_native_support_is_quiet(monkeypatch) -> None:
    monkeypatch.setattr(device, "cpu_has_bfloat16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert device.resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
