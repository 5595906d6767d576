"""Turning ``--device`` and ``--dtype`` settings into torch objects, and naming the hardware behind a device."""

from __future__ import annotations

import functools

import torch

from pytest_forgetting.errors import ForgettingError

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(setting: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda``/``cuda:N`` must exist."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ForgettingError(
                f"--device {setting}: no CUDA GPU is available here; use --device cpu or auto"
            )
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise ForgettingError(
                f"--device {setting}: only {torch.cuda.device_count()} CUDA device(s) visible; "
                f"use cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ForgettingError(f"--device {setting}: MPS is not available here; use --device cpu")
    return device


def cpu_has_bfloat16() -> bool:
    """True when this CPU computes bfloat16 natively (``avx512_bf16`` or AMX, as oneDNN reports)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(setting: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bfloat16 on a GPU that supports it, else float32 (bfloat16 on a CPU is opt-in).

    Asking for bfloat16 on a CPU without native support warns: it is emulated there, and
    slower than float32.
    """
    if setting == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        dtype = DTYPES[setting]
    except KeyError:
        raise ForgettingError(
            f"--dtype {setting}: unknown dtype; expected auto, {', '.join(DTYPES)}"
        ) from None
    if dtype == torch.bfloat16 and device.type == "cpu" and not cpu_has_bfloat16():
        import warnings

        warnings.warn("--dtype bfloat16: this CPU has no native bfloat16 (avx512_bf16 or AMX), so it is emulated "
                      "and slower than float32; use --dtype float32 here", stacklevel=2)
    return dtype


@functools.lru_cache(maxsize=None)
def device_name(device_type: str) -> str:
    """The name of the hardware behind a device type, for the result cache's key (computed once per process).

    ``cuda``: the distinct names of the visible GPUs (``torch.cuda.get_device_name``), sorted and
    joined with ``+``; ``cpu`` and ``mps``: the processor's model name (``/proc/cpuinfo``'s ``model
    name``, macOS's ``machdep.cpu.brand_string``, else ``platform.processor()``); another type:
    its torch module's ``get_device_name()`` where there is one, else the type itself.
    """
    if device_type == "cuda" and torch.cuda.is_available():
        names = {torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())}
        return "+".join(sorted(names))
    if device_type in ("cpu", "mps"):
        return cpu_name()
    module = getattr(torch, device_type, None)
    try:
        return str(module.get_device_name()) if module is not None and hasattr(module, "get_device_name") \
            else device_type
    except (RuntimeError, AssertionError):
        return device_type


def cpu_name() -> str:
    """The processor's model name (``Intel(R) Xeon(R) ...``), or the machine type when none is told."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        try:
            found = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                   timeout=5, check=False).stdout.strip()
            if found:
                return found
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown cpu"
