"""Shared pieces of :mod:`pytest_forgetting.comparison.stats`: thresholds and input validation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Wald is used only when ``n >= WALD_MIN_ITEMS`` and ``b + c >= WALD_MIN_DISCORDANT``;
#: otherwise the Tango score interval (good coverage with few or zero discordant pairs).
WALD_MIN_ITEMS = 30
WALD_MIN_DISCORDANT = 10
#: Power at which the minimum detectable effect (MDE) is reported.
MDE_POWER = 0.8

# Bound on the number of resampled indices held in memory at once by the bootstrap.
_BOOTSTRAP_CHUNK_ELEMENTS = 2_000_000


def _check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha={alpha!r}; expected a one-sided level in (0, 0.5), e.g. 0.05")
    return float(alpha)


def _as_vector(values: Sequence[float] | np.ndarray, name: str, caller: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{caller}: {name} is not a sequence of numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{caller}: {name} has shape {arr.shape}; expected one value per item")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{caller}: {name}[{i}] is {arr[i]!r}; expected finite numbers")
    return arr


def _paired_vectors(
    base: Sequence[float] | np.ndarray, tuned: Sequence[float] | np.ndarray, caller: str
) -> tuple[np.ndarray, np.ndarray]:
    a = _as_vector(base, "base", caller)
    t = _as_vector(tuned, "tuned", caller)
    if a.size != t.size:
        raise ValueError(
            f"{caller}: base has {a.size} items but tuned has {t.size}; expected one score "
            "per item for both models, in the same item order"
        )
    if a.size == 0:
        raise ValueError(f"{caller}: no items; expected at least one paired item")
    return a, t
