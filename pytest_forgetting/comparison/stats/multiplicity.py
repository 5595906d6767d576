"""Multiplicity corrections over capabilities: Holm (family-wise) and Benjamini-Hochberg (FDR)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_p_values(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if np.any(~((p >= 0.0) & (p <= 1.0))):
        raise ValueError(f"p-values {p.tolist()!r}; expected numbers in [0, 1]")
    return p


def holm(p_values: Sequence[float] | np.ndarray) -> list[float]:
    """Holm (1979) step-down adjusted p-values (family-wise error), in input order.

    Sorted ascending, ``adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``.
    """
    p = _check_p_values(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out.tolist()


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> list[float]:
    """Benjamini-Hochberg (1995) step-up adjusted p-values (false discovery rate), input order.

    Sorted ascending, ``adj_(i) = min_{j >= i} min(1, m p_(j) / j)``.
    """
    p = _check_p_values(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = np.empty(m)
    out[order] = adj
    return out.tolist()
