"""Binary (0/1) correctness: McNemar p-values, Tango score and Wald intervals, clustered SEs."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from pytest_forgetting.comparison.stats._common import (
    MDE_POWER,
    WALD_MIN_DISCORDANT,
    WALD_MIN_ITEMS,
    _check_alpha,
    _paired_vectors,
)
from pytest_forgetting.comparison.stats.power import minimum_detectable_drop


@dataclass(frozen=True)
class PairedBinary:
    """Paired comparison of 0/1 correctness on the same ``n`` items (see :func:`paired_binary`).

    ``forgotten`` (b) counts items the base got right and the tuned model wrong; ``gained``
    (c) the reverse. ``p_value`` is the one-sided McNemar mid-p for "tuned is worse",
    ``p_value_exact`` the exact conditional one. ``ci_low``/``ci_high`` form a two-sided
    ``1 - 2*alpha`` interval for ``delta`` and ``lower_bound == ci_low``. ``mde`` is the
    smallest drop detectable with 80% power at one-sided level ``alpha``.
    """

    n: int
    base_mean: float
    tuned_mean: float
    delta: float
    se: float
    forgotten: int
    gained: int
    p_value: float
    p_value_exact: float
    ci_low: float
    ci_high: float
    lower_bound: float
    interval_method: str
    mde: float
    alpha: float
    n_clusters: int | None = None
    design_effect: float = 1.0

    @property
    def worst_case_drop(self) -> float:
        """One-sided ``1 - alpha`` upper bound of the accuracy drop (positive = worse)."""
        return -self.lower_bound

    @property
    def discordance(self) -> float:
        """Observed share of items on which the two models disagree, ``(b + c) / n``."""
        return (self.forgotten + self.gained) / self.n


def _tango_restricted_pb(b: float, c: float, n: float, d: float) -> float:
    """Restricted MLE of P(forgotten) under H0: P(gained) - P(forgotten) = d (Tango 1998).

    The positive root of ``2n p^2 + B p + C = 0`` with ``B = -(b + c) + (2n - c + b) d`` and
    ``C = -b d (1 - d)``, evaluated in a cancellation-free form and clamped to the cells'
    admissible range, which only rounding can leave.
    """
    a2 = 2.0 * n
    bq = -(b + c) + (2.0 * n - c + b) * d
    cq = -b * d * (1.0 - d)
    root = math.sqrt(max(bq * bq - 4.0 * a2 * cq, 0.0))
    if bq < 0.0:
        p = (root - bq) / (2.0 * a2)
    else:
        denom = bq + root
        p = -2.0 * cq / denom if denom > 0.0 else 0.0
    return min(max(p, 0.0, -d), (1.0 - d) / 2.0)


def tango_score(forgotten: float, gained: float, n: float, d: float) -> float:
    """Tango's (1998) score statistic for H0: delta = d, delta = (gained - forgotten) / n.

    ``Z(d) = (c - b - n d) / sqrt(n (2 p_b + d (1 - d)))`` with ``p_b`` the restricted MLE of
    the forgotten cell; decreasing in ``d``. Counts may be non-integer (design-effect scaled).
    """
    b, c = float(forgotten), float(gained)
    num = c - b - n * d
    var = 2.0 * _tango_restricted_pb(b, c, n, d) + d * (1.0 - d)
    if var <= 0.0:
        return 0.0 if num == 0.0 else math.copysign(math.inf, num)
    return num / math.sqrt(n * var)


def tango_interval(
    forgotten: float, gained: float, n: float, alpha: float = 0.05
) -> tuple[float, float]:
    """Tango (1998) score interval for delta = (gained - forgotten) / n, two-sided ``1 - 2*alpha``.

    Inverts :func:`tango_score`: the bounds solve ``Z(d) = +-z_{1-alpha}`` (Brent's method).
    Finite, inside [-1, 1] and non-degenerate even with zero discordant pairs: for
    ``b = c = 0`` it is ``+-z^2 / (n + z^2)``.
    """
    _check_alpha(alpha)
    b, c, n = float(forgotten), float(gained), float(n)
    if not (n > 0 and b >= 0 and c >= 0 and b + c <= n):
        raise ValueError(f"tango_interval: counts b={b}, c={c}, n={n}; expected 0 <= b + c <= n")
    z = float(stats.norm.ppf(1.0 - alpha))
    est = (c - b) / n
    eps = 1e-12

    def solve(target: float, edge: float) -> float:
        if abs(est - edge) <= eps:
            return edge
        near_edge = edge - math.copysign(eps, edge)

        def f(d: float) -> float:
            return tango_score(b, c, n, d) - target

        if f(near_edge) * f(est) > 0.0:  # score never reaches z before the edge
            return edge
        return float(optimize.brentq(f, min(est, near_edge), max(est, near_edge), xtol=1e-14))

    return solve(z, -1.0), solve(-z, 1.0)


def _cluster_index(clusters: Sequence[Hashable], n: int, caller: str) -> tuple[np.ndarray, int]:
    """Each item's cluster as 0..C-1 (first-seen order), and C; at least 2 clusters."""
    if len(clusters) != n:
        raise ValueError(
            f"{caller}: {len(clusters)} cluster ids for {n} items; expected one cluster id per item"
        )
    codes: dict[Hashable, int] = {}
    index = np.fromiter((codes.setdefault(k, len(codes)) for k in clusters), np.intp, n)
    if len(codes) < 2:
        raise ValueError(
            f"{caller}: all items are in one cluster; a clustered standard error needs "
            "at least 2 clusters (pass clusters=None for independent items)"
        )
    return index, len(codes)


def _clustered_se(d: np.ndarray, clusters: Sequence[Hashable], caller: str = "paired_binary") -> tuple[float, int]:
    index, n_c = _cluster_index(clusters, d.size, caller)
    sums = np.bincount(index, weights=d - d.mean(), minlength=n_c)
    return math.sqrt(n_c / (n_c - 1) * float(np.sum(sums**2))) / d.size, n_c


def paired_binary(
    base: Sequence[float | bool] | np.ndarray,
    tuned: Sequence[float | bool] | np.ndarray,
    *,
    alpha: float = 0.05,
    clusters: Sequence[Hashable] | None = None,
    interval: str = "tango",
) -> PairedBinary:
    """Compare per-item 0/1 correctness of ``tuned`` against ``base`` on the same items.

    * ``se``: paired SE ``sqrt(((b + c)/n - delta^2) / (n - 1))`` (Miller 2024; NaN for
      ``n = 1``), or with ``clusters`` the clustered SE
      ``(1/n) sqrt(C/(C-1) sum_c (sum_{i in c} (d_i - mean d))^2)``.
    * ``p_value``: one-sided McNemar mid-p ``P(X > b) + P(X = b)/2``, ``X ~ Bin(b + c, 1/2)``
      (Fagerland et al. 2013); ``p_value_exact = P(X >= b)``. Both treat items as
      independent even when ``clusters`` is given.
    * Interval (``interval``): ``"tango"`` (default), the Tango (1998) score interval
      (:func:`tango_interval`), which holds its level at every n (the Wald interval passes
      up to 6-7% instead of 5% at the null boundary for n <= 100); ``"wald"``,
      ``delta +- z_{1-alpha} se``; ``"auto"``, Wald when ``n >= 30`` and ``b + c >= 10``,
      else Tango. With clusters the
      Tango interval uses Rao-Scott counts ``b/deff, c/deff, n/deff``, where the design
      effect ``deff = max(1, (se_clustered / se_paired)^2)``.
    * ``mde``: :func:`minimum_detectable_drop` at 80% power with ``n / deff`` items and the
      observed discordance ``psi = (b + c)/n`` floored at ``1/n`` (one discordant item), so
      identical models still get a finite, honest MDE (about ``2.5/n`` at alpha 0.05).

    Raises ValueError for different lengths, no items, or values other than 0/1.
    """
    alpha = _check_alpha(alpha)
    a, t = _paired_vectors(base, tuned, "paired_binary")
    for name, arr in (("base", a), ("tuned", t)):
        bad = np.flatnonzero((arr != 0.0) & (arr != 1.0))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"paired_binary: {name}[{i}] is {arr[i]:g}; expected 0/1 correctness per item "
                "(use paired_bootstrap for continuous scores)"
            )
    n = a.size
    b = int(np.count_nonzero((a == 1.0) & (t == 0.0)))
    c = int(np.count_nonzero((a == 0.0) & (t == 1.0)))
    delta = (c - b) / n
    se_paired = math.sqrt(max((b + c) / n - delta**2, 0.0) / (n - 1)) if n > 1 else math.nan
    se, n_clusters, deff = se_paired, None, 1.0
    if clusters is not None:
        se, n_clusters = _clustered_se(t - a, clusters)
        if se_paired > 0.0:
            deff = max(1.0, (se / se_paired) ** 2)

    m = b + c
    p_exact = float(stats.binom.sf(b - 1, m, 0.5)) if m else 1.0
    p_mid = float(stats.binom.sf(b, m, 0.5) + 0.5 * stats.binom.pmf(b, m, 0.5)) if m else 0.5

    if interval not in ("tango", "wald", "auto"):
        raise ValueError(f"paired_binary: interval {interval!r}; expected 'tango', 'wald' or 'auto'")
    use_wald = interval == "wald" or (
        interval == "auto" and n >= WALD_MIN_ITEMS and m >= WALD_MIN_DISCORDANT
    )
    if use_wald and n > 1:
        method = "wald"
        half = float(stats.norm.ppf(1.0 - alpha)) * se
        low, high = max(-1.0, delta - half), min(1.0, delta + half)
    else:
        method = "tango"
        low, high = tango_interval(b / deff, c / deff, n / deff, alpha)

    mde = minimum_detectable_drop(n / deff, max(m, 1) / n, alpha, MDE_POWER)
    return PairedBinary(
        n=n,
        base_mean=float(a.mean()),
        tuned_mean=float(t.mean()),
        delta=delta,
        se=se,
        forgotten=b,
        gained=c,
        p_value=min(1.0, p_mid),
        p_value_exact=min(1.0, p_exact),
        ci_low=low,
        ci_high=high,
        lower_bound=low,
        interval_method=method,
        mde=mde,
        alpha=alpha,
        n_clusters=n_clusters,
        design_effect=deff,
    )


def paired_se(base: Sequence[float] | np.ndarray, tuned: Sequence[float] | np.ndarray,
              clusters: Sequence[Hashable] | None = None) -> float:
    """Paired standard error of ``mean(tuned - base)``: ``sd(d) / sqrt(n)`` (NaN for one item).

    With ``clusters``, the clustered SE ``(1/n) sqrt(C/(C-1) sum_c (sum_{i in c} (d_i - mean d))^2)``
    (Miller 2024).
    """
    a, t = _paired_vectors(base, tuned, "paired_se")
    if clusters is not None:
        return _clustered_se(t - a, clusters, "paired_se")[0]
    return float(np.std(t - a, ddof=1) / math.sqrt(a.size)) if a.size > 1 else math.nan


def non_inferior(stats: PairedBinary, tolerance_abs: float) -> bool:
    """Non-inferiority rule: pass iff ``lower_bound > -tolerance_abs``.

    A one-sided test at level ``alpha`` of H0 "delta <= -tolerance" (RESEARCH.md section 2).
    """
    return stats.lower_bound > -tolerance_abs


def significant_regression(
    stats: PairedBinary, tolerance_abs: float, alpha: float | None = None
) -> bool:
    """Regression rule: fail iff the McNemar mid-p is below ``alpha`` and ``delta < -tolerance``.

    ``alpha`` defaults to ``stats.alpha``.
    """
    level = stats.alpha if alpha is None else alpha
    return stats.p_value < level and stats.delta < -tolerance_abs
