"""Corpus metrics: a score that is a function of all documents (F1, BLEU, perplexity), decided by a paired bootstrap.

An lm-eval metric aggregated by anything but a mean (``f1``, ``matthews_corrcoef``, ``bleu``,
``weighted_perplexity``, ``bits_per_byte``, ifeval's instruction-level accuracy) has no
per-document score to average: its per-document values are pairs or lists, and the score
is the task's aggregation over them. The comparison resamples the documents with
replacement (the same indices for both models), recomputes the aggregation for base and
tuned on each resample, and reads the one-sided bound of the change from the resampled
differences (a percentile interval, as for per-item continuous metrics). The per-document
numbers shown in the report (each document aggregated alone) only list and count the
documents that got worse; they do not decide.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Optional, Sequence

import numpy as np
from scipy import stats

from pytest_forgetting.comparison.decision import Decision
from pytest_forgetting.comparison.result import ComparisonResult
from pytest_forgetting.comparison.stats._common import MDE_POWER
from pytest_forgetting.comparison.verdict import decide
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.metrics import Metric, default_tolerance

#: Resamples of the corpus bootstrap (each recomputes the aggregation twice).
CORPUS_RESAMPLES = 2000
#: Fewest documents the corpus bootstrap decides on.
MIN_CORPUS_DOCUMENTS = 10


def decide_corpus(base_raw: Sequence[Any], tuned_raw: Sequence[Any], base_values: Sequence[float],
                  tuned_values: Sequence[float], decision: Decision, *, metric: Metric, template: ComparisonResult,
                  seed: int = 0, level: Optional[float] = None, n_resamples: int = CORPUS_RESAMPLES
                  ) -> ComparisonResult:
    """The verdict on a corpus metric: ``metric.aggregate`` of tuned vs base, bootstrapped over documents."""
    aggregate = metric.aggregate
    if aggregate is None:
        raise ForgettingError(f"metric {metric.name!r} has no aggregation; it is a per-item metric")
    n = len(base_raw)
    if n != len(tuned_raw) or not n:
        raise ForgettingError(f"{template.capability}: base and tuned have {len(base_raw)} and {len(tuned_raw)} "
                              "documents; a paired comparison needs the same non-empty documents")
    per_item = decide(base_values, tuned_values, decision, metric=replace(metric, aggregate=None),
                      template=template, level=level)
    base_score, tuned_score = float(aggregate(list(base_raw))), float(aggregate(list(tuned_raw)))
    delta = tuned_score - base_score
    higher = metric.higher_is_better
    tolerance = decision.tolerance or default_tolerance(metric, decision.session_tolerance)
    tolerance_abs = tolerance.absolute(base_score)
    test_alpha = per_item.test_alpha
    name = getattr(aggregate, "__name__", "aggregation")
    if n < MIN_CORPUS_DOCUMENTS:
        low, high, p_value, se = -math.inf, math.inf, 1.0, math.nan
        statistic = f"no interval: {n} documents are too few for a corpus bootstrap (it needs {MIN_CORPUS_DOCUMENTS})"
    else:
        rng = np.random.default_rng(seed)
        boot = np.empty(n_resamples)
        for b in range(n_resamples):
            picked = rng.integers(0, n, size=n)
            boot[b] = float(aggregate([tuned_raw[i] for i in picked])) - float(aggregate([base_raw[i] for i in picked]))
        boot = boot[np.isfinite(boot)]
        if boot.size == 0:
            raise ForgettingError(f"{template.capability}: {name} is not finite on any resample of the documents")
        low, high = (float(q) for q in np.quantile(boot, [test_alpha, 1.0 - test_alpha]))
        not_worse = np.count_nonzero(boot >= 0.0 if higher else boot <= 0.0)
        p_value = (1.0 + float(not_worse)) / (boot.size + 1.0)
        se = float(np.std(boot, ddof=1))
        statistic = f"paired corpus bootstrap of {name} over documents (B={n_resamples}, seed={seed})"
    worst_drop = -low if higher else high
    observed_drop = -delta if higher else delta
    unchanged = list(base_raw) == list(tuned_raw)
    if decision.policy == "non-inferiority":
        passed = worst_drop < tolerance_abs or unchanged
    else:
        passed = not (p_value < test_alpha and observed_drop > tolerance_abs)
    mde = float((stats.norm.ppf(1.0 - test_alpha) + stats.norm.ppf(MDE_POWER)) * se) if math.isfinite(se) else math.inf
    return replace(
        per_item, base_score=base_score, tuned_score=tuned_score, delta=delta, ci_low=float(low), ci_high=float(high),
        p_value=float(p_value), mde=mde, se=se, tolerance=str(tolerance), tolerance_abs=float(tolerance_abs),
        verdict="pass" if passed else "fail", statistic=statistic,
        underpowered=bool(mde > tolerance_abs and (low <= -tolerance_abs <= high if higher
                                                   else low <= tolerance_abs <= high)),
        extra={**per_item.extra, "corpus_aggregation": name},
    )
