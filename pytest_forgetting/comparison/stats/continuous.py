"""Continuous per-item metrics: the paired (or cluster) bootstrap and its non-inferiority rule."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pytest_forgetting.comparison.stats._common import (
    _BOOTSTRAP_CHUNK_ELEMENTS,
    MDE_POWER,
    _check_alpha,
    _paired_vectors,
)
from pytest_forgetting.comparison.stats.binary import _cluster_index, _clustered_se


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
