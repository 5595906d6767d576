"""Score both models on a suite and compare them: the function form of ``forgetting.compare``."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from pytest_forgetting.comparison.verdict import ComparisonResult, Decision, decide, paired_records, resolve_decision
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.backends.contract import ModelHandle
from pytest_forgetting.scoring.suites import Suite
from pytest_forgetting.tolerance import ToleranceLike

ScoreFn = Callable[..., Any]


def _default_score(handle: ModelHandle, suite: Suite, **kwargs: Any) -> Any:
    from pytest_forgetting.scoring.kinds import score_suite

    return score_suite(handle, suite, **kwargs)


def compare(
    base: ModelHandle,
    tuned: ModelHandle,
    suite: Suite,
    *,
    capability: Optional[str] = None,
    metric: Optional[str] = None,
    tolerance: Optional[ToleranceLike] = None,
    policy: Optional[str] = None,
    alpha: Optional[float] = None,
    decision: Optional[Decision] = None,
    registry: Any = None,
    batch_size: Optional[int] = None,
    score: ScoreFn = _default_score,
) -> ComparisonResult:
    """Score ``base`` and ``tuned`` on ``suite`` with identical settings and compare them.

    Args:
        capability: name shown in reports (default: the suite's name).
        metric: which metric decides (default: the suite's primary metric, e.g. ``acc``).
        tolerance, policy, alpha: the decision (defaults: 0.02, non-inferiority, 0.05), or
            pass a ready :class:`Decision`.
        score: the per-model scoring function (the plugin passes a cached one).
    """
    if decision is None:
        decision = resolve_decision(tolerance=tolerance, policy=policy, alpha=alpha)
    extra_kwargs = {"registry": registry} if suite.kind == "generation" else {}
    base_scores = score(base, suite, batch_size=batch_size, **extra_kwargs)
    tuned_scores = score(tuned, suite, batch_size=batch_size, **extra_kwargs)
    metric = metric or base_scores.primary
    if metric not in base_scores.metrics:
        raise ForgettingError(
            f"suite {suite.name}: no metric {metric!r}; it has: {', '.join(base_scores.metrics)}"
        )
    base_values, tuned_values = base_scores.metrics[metric], tuned_scores.metrics[metric]
    clusters = [item.cluster for item in suite.items]
    template = ComparisonResult(
        capability=capability or suite.name, suite=suite.name, metric=metric,
        higher_is_better=base_scores.higher_is_better[metric], n=0, base_score=0.0, tuned_score=0.0,
        delta=0.0, ci_low=0.0, ci_high=0.0, p_value=1.0, mde=0.0, forgotten=0, gained=0, tolerance="",
        tolerance_abs=0.0, policy=decision.policy, alpha=decision.alpha, verdict="", statistic="",
        underpowered=False, base_model=base.name, tuned_model=tuned.name,
        records=paired_records(base_scores.records, tuned_scores.records, base_values, tuned_values),
        extra={"base": base_scores.extra, "tuned": tuned_scores.extra} if base_scores.extra else {},
        clusters=[str(c) for c in clusters] if all(c is not None for c in clusters) else None,
    )
    return decide(base_values, tuned_values, decision, template=template)


def compare_drift(
    base: ModelHandle,
    tuned: ModelHandle,
    suite: Suite,
    *,
    max_kl: ToleranceLike = 0.1,
    capability: Optional[str] = None,
    metric: str = "kl",
    alpha: Optional[float] = None,
    top_k: int = 3,
    max_new_tokens: Optional[int] = None,
    batch_size: Optional[int] = None,
    outputs: Optional[Sequence[str]] = None,
    score: Optional[ScoreFn] = None,
) -> ComparisonResult:
    """Label-free drift check: pass while the upper bound of mean KL (or shift rate) < ``max_kl``.

    The base's drift from itself is 0 by definition, so this is a one-sample bound on the
    tuned model's mean per-item drift (paired bootstrap against zeros). ``score`` is the
    drift-scoring function (default :func:`~pytest_forgetting.scoring.drift.score_drift`;
    the plugin passes a cached one).
    """
    from pytest_forgetting.scoring.drift import score_drift

    if score is None:
        score = score_drift
    if metric not in ("kl", "shift_rate"):
        raise ForgettingError(f"drift metric {metric!r}; expected 'kl' or 'shift_rate'")
    decision = resolve_decision(tolerance=max_kl, alpha=alpha)
    if decision.tolerance.relative:
        raise ForgettingError(f"max_kl={max_kl!r}: give an absolute bound (e.g. 0.1 nats); drift has no base score to take a percentage of")
    drift = score(base, tuned, suite, top_k=top_k, max_new_tokens=max_new_tokens,
                  batch_size=batch_size, outputs=outputs)
    values = drift.kl if metric == "kl" else drift.shift_rate
    template = ComparisonResult(
        capability=capability or suite.name, suite=suite.name, metric=metric, higher_is_better=False,
        n=0, base_score=0.0, tuned_score=0.0, delta=0.0, ci_low=0.0, ci_high=0.0, p_value=1.0, mde=0.0,
        forgotten=0, gained=0, tolerance="", tolerance_abs=0.0, policy=decision.policy, alpha=decision.alpha,
        verdict="", statistic="", underpowered=False, base_model=base.name, tuned_model=tuned.name,
        records=[{**r, "base": 0.0, "tuned": r[metric], "expected": None, "base_answer": None,
                  "tuned_answer": r["output"]} for r in drift.records],
        extra={"top_shifted": drift.top_shifted, "mean_kl": sum(drift.kl) / len(drift.kl),
               "mean_shift_rate": sum(drift.shift_rate) / len(drift.shift_rate), "top_k": top_k},
    )
    return decide([0.0] * len(values), values, decision, template=template)
