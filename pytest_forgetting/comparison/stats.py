"""Paired statistics for comparing a tuned model with its base on the same items.

Pure numerics (numpy and scipy only). Conventions used throughout:

* ``delta = mean(tuned - base)``. For accuracy-like metrics a negative delta is a drop.
* Intervals are two-sided ``1 - 2*alpha`` intervals, so ``ci_low`` is also the one-sided
  ``1 - alpha`` lower bound (and ``ci_high`` the upper one): the bound a release gate with
  one-sided level ``alpha`` compares against its tolerance.
* ``worst_case_drop`` is the one-sided ``1 - alpha`` bound of the drop in the "worse"
  direction, positive meaning worse. A capability is non-inferior with tolerance ``t`` iff
  ``worst_case_drop < t``.

Sources: paired and clustered standard errors from Miller (2024), "Adding Error Bars to
Evals"; one-sided McNemar mid-p from Fagerland, Lydersen & Laake (2013), "The McNemar test
for binary matched-pairs data: mid-p and asymptotic are better than exact conditional", BMC
Med. Res. Methodol. 13:91; the score interval for a difference of paired proportions from
Tango (1998), Stat. Med. 17:891-908; the paired bootstrap from Koehn (2004), "Statistical
significance tests for machine translation evaluation", EMNLP; Holm (1979), Scand. J.
Statist. 6:65-70; Benjamini & Hochberg (1995), J. R. Statist. Soc. B 57:289-300.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

#: Wald is used only when ``n >= WALD_MIN_ITEMS`` and ``b + c >= WALD_MIN_DISCORDANT``;
#: otherwise the Tango score interval (good coverage with few or zero discordant pairs).
WALD_MIN_ITEMS = 30
WALD_MIN_DISCORDANT = 10
#: Power at which the minimum detectable effect (MDE) is reported.
MDE_POWER = 0.8

# Bound on the number of resampled indices held in memory at once by the bootstrap.
_BOOTSTRAP_CHUNK_ELEMENTS = 2_000_000


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


@dataclass(frozen=True)
class PairedContinuous:
    """Paired bootstrap comparison of a continuous per-item metric (see :func:`paired_bootstrap`).

    ``delta``, ``ci_low``/``ci_high`` (two-sided ``1 - 2*alpha`` percentile interval) and
    ``lower_bound``/``upper_bound`` (one-sided ``1 - alpha`` bounds, equal to the interval
    ends) always refer to ``mean(tuned - base)`` whatever the orientation. ``p_value`` is the
    one-sided bootstrap p-value for "tuned is worse" in the metric's own orientation, and
    ``worst_case_drop`` the bound of the change in the worse direction (positive = worse).
    """

    n: int
    base_mean: float
    tuned_mean: float
    delta: float
    ci_low: float
    ci_high: float
    lower_bound: float
    upper_bound: float
    p_value: float
    n_resamples: int
    seed: int
    alpha: float
    mde: float
    higher_is_better: bool = True
    se: float = math.nan
    n_clusters: int | None = None

    @property
    def observed_drop(self) -> float:
        """Observed change in the worse direction (positive = worse)."""
        return -self.delta if self.higher_is_better else self.delta

    @property
    def worst_case_drop(self) -> float:
        """One-sided ``1 - alpha`` bound of the change in the worse direction (positive = worse).

        ``-lower_bound`` when higher is better (accuracy, ROUGE), ``upper_bound`` when lower
        is better (NLL, KL).
        """
        return -self.lower_bound if self.higher_is_better else self.upper_bound


# ----------------------------------------------------------------------------- validation


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


# ----------------------------------------------------------------------------- binary


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


# ----------------------------------------------------------------------------- continuous


def paired_bootstrap(
    base: Sequence[float] | np.ndarray,
    tuned: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    seed: int = 0,
    higher_is_better: bool = True,
    clusters: Sequence[Hashable] | None = None,
) -> PairedContinuous:
    """Paired bootstrap over item indices (Koehn 2004) for a continuous per-item metric.

    Resamples the items with replacement ``n_resamples`` times (same indices for both
    models, i.e. resampling ``d_i = tuned_i - base_i``) with ``numpy.random.default_rng(seed)``,
    in chunks of bounded memory; the same inputs and seed give the same result. Cost grows
    as ``n * n_resamples`` (about 0.1 s for n = 1,000 and 4 s for n = 50,000 at B = 10,000).

    * ``ci_low``/``ci_high``: ``alpha`` and ``1 - alpha`` percentiles of the resampled deltas
      (also the one-sided ``lower_bound``/``upper_bound``).
    * ``p_value``: one-sided, H1 "tuned worse". With ``higher_is_better`` it is
      ``(1 + #{delta* >= 0}) / (B + 1)``; otherwise ``(1 + #{delta* <= 0}) / (B + 1)``.
    * ``mde``: ``(z_{1-alpha} + z_{0.8}) sd(d) / sqrt(n)`` (normal approximation; ``inf``
      for ``n = 1``, 0 when all differences are equal).
    * ``clusters`` (items sharing a passage or template): whole clusters are resampled
      (a cluster bootstrap, same clusters for both models), each resample's delta the mean
      over the items of its clusters; ``se`` and ``mde`` use the clustered SE.
    """
    alpha = _check_alpha(alpha)
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"paired_bootstrap: n_resamples={n_resamples!r}; expected an int >= 1")
    a, t = _paired_vectors(base, tuned, "paired_bootstrap")
    n, n_resamples = a.size, int(n_resamples)
    d = t - a
    rng = np.random.default_rng(seed)
    boot = np.empty(n_resamples)
    n_clusters = None
    if clusters is None:
        chunk = max(1, min(n_resamples, _BOOTSTRAP_CHUNK_ELEMENTS // n))
        for start in range(0, n_resamples, chunk):
            stop = min(start + chunk, n_resamples)
            boot[start:stop] = d[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
        se = float(np.std(d, ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    else:
        index, n_clusters = _cluster_index(clusters, n, "paired_bootstrap")
        sums = np.bincount(index, weights=d, minlength=n_clusters)
        sizes = np.bincount(index, minlength=n_clusters).astype(np.float64)
        chunk = max(1, min(n_resamples, _BOOTSTRAP_CHUNK_ELEMENTS // n_clusters))
        for start in range(0, n_resamples, chunk):
            stop = min(start + chunk, n_resamples)
            picked = rng.integers(0, n_clusters, size=(stop - start, n_clusters))
            boot[start:stop] = sums[picked].sum(axis=1) / sizes[picked].sum(axis=1)
        se = _clustered_se(d, clusters, "paired_bootstrap")[0]
    low, high = (float(q) for q in np.quantile(boot, [alpha, 1.0 - alpha]))
    not_worse = np.count_nonzero(boot >= 0.0 if higher_is_better else boot <= 0.0)
    z_sum = float(stats.norm.ppf(1.0 - alpha) + stats.norm.ppf(MDE_POWER))
    mde = z_sum * se if n > 1 else math.inf
    return PairedContinuous(
        n=n,
        base_mean=float(a.mean()),
        tuned_mean=float(t.mean()),
        delta=float(d.mean()),
        ci_low=low,
        ci_high=high,
        lower_bound=low,
        upper_bound=high,
        p_value=(1.0 + float(not_worse)) / (n_resamples + 1.0),
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        mde=mde,
        higher_is_better=higher_is_better,
        se=se,
        n_clusters=n_clusters,
    )


def non_inferior_continuous(stats: PairedContinuous, tolerance_abs: float) -> bool:
    """Non-inferiority rule for continuous metrics: pass iff ``worst_case_drop < tolerance_abs``."""
    return stats.worst_case_drop < tolerance_abs


# ----------------------------------------------------------------------------- multiplicity


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


# ----------------------------------------------------------------------------- power


def _z_levels(alpha: float, power: float) -> tuple[float, float]:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r}; expected a one-sided level in (0, 1)")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power={power!r}; expected a probability in (0, 1), e.g. 0.8")
    return float(stats.norm.ppf(1.0 - alpha)), float(stats.norm.ppf(power))


def items_needed(
    drop: float, psi: float, alpha: float = 0.05, power: float = 0.8, n_tests: int = 1
) -> int:
    """Items needed to detect a paired accuracy drop with a one-sided McNemar-type test.

    ``n = ceil([z_a sqrt(psi) + z_b sqrt(psi - D^2)]^2 / D^2)`` with ``D = drop``, ``psi`` the
    discordance P(b or c), ``z_a = z_{1 - alpha/n_tests}`` (Holm's worst case, i.e.
    Bonferroni, over ``n_tests`` capabilities) and ``z_b = z_power`` (RESEARCH.md section 2).
    """
    if int(n_tests) != n_tests or n_tests < 1:
        raise ValueError(f"n_tests={n_tests!r}; expected an int >= 1")
    if not 0.0 < drop <= psi <= 1.0:
        raise ValueError(
            f"drop={drop!r}, psi={psi!r}; expected 0 < drop <= psi <= 1 (a drop needs at "
            "least that much discordance)"
        )
    z_a, z_b = _z_levels(alpha / n_tests, power)
    n = (z_a * math.sqrt(psi) + z_b * math.sqrt(psi - drop**2)) ** 2 / drop**2
    return max(1, math.ceil(n - 1e-9))


def minimum_detectable_drop(n: float, psi: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest paired drop D detectable with ``n`` items at discordance ``psi``.

    Solves ``n D^2 = [z_a sqrt(psi) + z_b sqrt(psi - D^2)]^2`` in closed form:
    ``D = sqrt(psi) (z_a sqrt(n) + z_b sqrt(n - z_a^2 + z_b^2)) / (n + z_b^2)``. Returns
    ``inf`` when ``n < z_a^2`` (no drop is detectable) and 0 for ``psi = 0``. A result above
    ``psi`` means no drop compatible with that discordance is detectable.
    """
    if not n > 0:
        raise ValueError(f"n={n!r}; expected a positive number of items")
    if not 0.0 <= psi <= 1.0:
        raise ValueError(f"psi={psi!r}; expected a discordance in [0, 1]")
    z_a, z_b = _z_levels(alpha, power)
    if n < z_a**2:
        return math.inf
    return (
        math.sqrt(psi) * (z_a * math.sqrt(n) + z_b * math.sqrt(n - z_a**2 + z_b**2)) / (n + z_b**2)
    )
