"""Paired comparison of base and tuned scores on the same items, and the verdict.

The statistic follows the metric's declaration, never the data:

* a **binary** metric (0/1 per item: accuracy, exact match) is compared as paired
  proportions: the Tango score interval for non-inferiority and McNemar's mid-p for
  significance (``../shared/RESEARCH.md`` section 2); a lower-is-better binary metric (an
  error indicator) is compared on its complement;
* a **continuous** metric (NLL, ROUGE, KL) uses a seeded paired bootstrap over items (Koehn
  2004), resampling whole clusters when items carry a ``cluster``. Below
  :data:`MIN_BOOTSTRAP_ITEMS` items the bootstrap cannot reach its stated level (its bound
  never goes past the most extreme observed item), so no interval is claimed.

Non-inferiority (the default policy) passes when the one-sided ``1 - alpha`` bound of the
drop is within tolerance, or when no item got worse at all: a suite too small to prove
non-inferiority does not fail a tuned model that forgot nothing (it is flagged as
underpowered instead).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Optional, Sequence

from pytest_forgetting.comparison import stats
from pytest_forgetting.comparison.decision import Decision, resolve_decision
from pytest_forgetting.comparison.result import ComparisonResult
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.metrics import Metric, default_tolerance

__all__ = ["ComparisonResult", "Decision", "decide", "paired_records", "resolve_decision", "MIN_BOOTSTRAP_ITEMS"]

#: Forgotten items kept in a result (the rest are counted, not listed).
MAX_LISTED = 50
#: Fewest items a continuous metric's paired bootstrap decides on.
MIN_BOOTSTRAP_ITEMS = 10


def decide(
    base_values: Sequence[float],
    tuned_values: Sequence[float],
    decision: Decision,
    *,
    metric: Metric,
    template: ComparisonResult,
    seed: int = 0,
    level: Optional[float] = None,
) -> ComparisonResult:
    """Compute paired statistics and the verdict; copy descriptive fields from ``template``.

    ``decision.tolerance`` None means :func:`~pytest_forgetting.scoring.metrics.default_tolerance`
    of ``metric`` (given the session's default, ``decision.session_tolerance``). ``level``
    replaces the one-sided level of the interval and test (``decision.test_alpha``): a
    sequential verdict's look runs at its spent level.
    """
    if len(base_values) != len(tuned_values) or not base_values:
        raise ForgettingError(
            f"{template.capability}: base and tuned have {len(base_values)} and "
            f"{len(tuned_values)} scores; a paired comparison needs the same non-empty items"
        )
    higher = metric.higher_is_better
    n = len(base_values)
    base_mean = sum(base_values) / n
    tuned_mean = sum(tuned_values) / n
    tolerance = decision.tolerance or default_tolerance(metric, decision.session_tolerance)
    tolerance_abs = tolerance.absolute(base_mean)
    # Under "significant", each of the family's capabilities is tested at alpha / m (Bonferroni,
    # the first Holm step); the session's report adds Holm-adjusted p-values across them.
    test_alpha = decision.test_alpha if level is None else level
    sign = 1.0 if higher else -1.0
    drops = [sign * (b - t) for b, t in zip(base_values, tuned_values)]
    nothing_worse = all(d <= 0 for d in drops)
    if metric.binary:
        flip = (lambda v: v) if higher else (lambda v: 1.0 - v)  # an error indicator: compare its complement
        result = stats.paired_binary([flip(v) for v in base_values], [flip(v) for v in tuned_values],
                                     alpha=test_alpha, clusters=template.clusters)
        low, high = (result.ci_low, result.ci_high) if higher else (-result.ci_high, -result.ci_low)
        p_value, mde, se = result.p_value, result.mde, result.se
        statistic = f"paired proportions ({result.interval_method} interval, McNemar mid-p)"
        if decision.policy == "non-inferiority":
            passed = stats.non_inferior(result, tolerance_abs) or result.forgotten == 0
        else:
            passed = not stats.significant_regression(result, tolerance_abs, test_alpha)
    elif n < MIN_BOOTSTRAP_ITEMS:
        low, high, p_value, mde = -math.inf, math.inf, 1.0, math.inf
        se = stats.paired_se(base_values, tuned_values)
        statistic = (f"no interval: {n} item{'s are' if n != 1 else ' is'} too few for a paired bootstrap "
                     f"(it needs {MIN_BOOTSTRAP_ITEMS}); add items")
        passed = nothing_worse if decision.policy == "non-inferiority" else True
    else:
        result_c = stats.paired_bootstrap(base_values, tuned_values, alpha=test_alpha, seed=seed,
                                          higher_is_better=higher, clusters=template.clusters)
        low, high, p_value, mde, se = result_c.ci_low, result_c.ci_high, result_c.p_value, result_c.mde, result_c.se
        clustered = f", {result_c.n_clusters} clusters" if result_c.n_clusters else ""
        statistic = f"paired bootstrap (B={result_c.n_resamples}, seed={seed}{clustered})"
        if decision.policy == "non-inferiority":
            passed = stats.non_inferior_continuous(result_c, tolerance_abs) or nothing_worse
        else:
            passed = not (p_value < test_alpha and result_c.observed_drop > tolerance_abs)
    worst_first = sorted(range(n), key=lambda i: (-drops[i], i))
    best_first = sorted(range(n), key=lambda i: (drops[i], i))
    return replace(
        template,
        metric=metric.name if not template.metric else template.metric,
        higher_is_better=higher,
        binary=metric.binary,
        unit=metric.unit,
        n=n,
        base_score=base_mean,
        tuned_score=tuned_mean,
        delta=tuned_mean - base_mean,
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(p_value),
        mde=float(mde),
        forgotten=sum(1 for d in drops if d > 0),
        gained=sum(1 for d in drops if d < 0),
        tolerance=str(tolerance),
        tolerance_abs=float(tolerance_abs),
        policy=decision.policy,
        alpha=decision.alpha,
        test_alpha=test_alpha,
        verdict="pass" if passed else "fail",
        statistic=statistic,
        # Too small to detect the tolerance, and the interval straddles it: inconclusive. An
        # interval wholly on one side (a clear drop, or proven within tolerance) is conclusive.
        underpowered=bool(mde > tolerance_abs and (low <= -tolerance_abs <= high if higher
                                                   else low <= tolerance_abs <= high)),
        forgotten_items=[template.records[i] for i in worst_first[:MAX_LISTED] if drops[i] > 0]
        if template.records else [],
        gained_items=[template.records[i] for i in best_first[:MAX_LISTED] if drops[i] < 0]
        if template.records else [],
        base_values=list(base_values),
        tuned_values=list(tuned_values),
        family_size=decision.family_size,
        se=float(se),
        holm_p=None,
        holm_verdict=None,
    )


def redecide(result: ComparisonResult, decision: Decision) -> ComparisonResult:
    """The same scores decided with another tolerance, policy or alpha (a new result).

    A sequential verdict cannot be re-decided: where it stopped (and the level of its last
    look) depended on the decision it was made for.
    """
    if "corpus_aggregation" in result.extra:
        raise ForgettingError(
            f"{result.capability}: a corpus metric ({result.extra['corpus_aggregation']}) is decided from the "
            "documents' raw values, which a result does not keep; give the tolerance, policy or alpha to "
            "compare()/check() instead"
        )
    if result.looks > 1:
        raise ForgettingError(
            f"{result.capability}: a sequential verdict ({result.sequential_text}) cannot be re-decided with "
            "another tolerance, policy or alpha; give them to compare()/check() or the capability marker, or "
            "turn sequential verdicts off (--forgetting-sequential=off)"
        )
    low, high = (0.0, 1.0) if result.binary else (-math.inf, math.inf)
    metric = Metric(result.metric, higher_is_better=result.higher_is_better, binary=result.binary,
                    unit=result.unit, low=low, high=high)
    return decide(result.base_values, result.tuned_values, decision, metric=metric, template=result)


def paired_records(base_records: Sequence[dict[str, Any]], tuned_records: Sequence[dict[str, Any]],
                   base_values: Sequence[float], tuned_values: Sequence[float]) -> list[dict[str, Any]]:
    """Per-item records side by side: prompt, expected, both answers and both scores."""
    merged = []
    for b, t, bv, tv in zip(base_records, tuned_records, base_values, tuned_values):
        expected = b.get("choices", [None])[b["gold"]] if "gold" in b else b.get("targets")
        merged.append({
            "id": b.get("id"), "prompt": b.get("prompt"), "expected": expected,
            "base_answer": b.get("answer"), "tuned_answer": t.get("answer"),
            "base": bv, "tuned": tv,
            **({"hits": t["hits"]} if "hits" in t else {}),
        })
    return merged


def blank_result(**fields: Any) -> ComparisonResult:
    """A result template with the descriptive fields given and the statistics still empty."""
    defaults: dict[str, Any] = dict(
        capability="", suite="", metric="", higher_is_better=True, n=0, base_score=0.0, tuned_score=0.0,
        delta=0.0, ci_low=0.0, ci_high=0.0, p_value=1.0, mde=0.0, forgotten=0, gained=0, tolerance="",
        tolerance_abs=0.0, policy="", alpha=0.05, verdict="", statistic="", underpowered=False,
    )
    return ComparisonResult(**{**defaults, **fields})

