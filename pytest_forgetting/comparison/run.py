"""From two models' scores on a suite to a :class:`ComparisonResult`, and the function forms.

:func:`compare_scores` and :func:`compare_drift_scores` are what
:class:`~pytest_forgetting.engine.session.EvaluationSession` decides with; :func:`compare`
and :func:`compare_drift` are for two backends a script holds itself (no cache, no session
to keep).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from pytest_forgetting.comparison.decision import Decision, resolve_decision
from pytest_forgetting.comparison.result import ComparisonResult
from pytest_forgetting.comparison.verdict import blank_result, decide, paired_records
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.metrics import KL, SHIFT_RATE
from pytest_forgetting.scoring.suites import Suite
from pytest_forgetting.tolerance import ToleranceLike

if TYPE_CHECKING:
    from pytest_forgetting.backends.contract import Backend
    from pytest_forgetting.scoring.drift import DriftScores
    from pytest_forgetting.scoring.kinds import SuiteScores

DRIFT_METRICS = {"kl": KL, "shift_rate": SHIFT_RATE}


def compare_scores(base: "SuiteScores", tuned: "SuiteScores", suite: Suite, decision: Decision, *,
                   capability: Optional[str] = None, metric: Optional[str] = None, candidate: str = "",
                   test: str = "", level: Optional[float] = None) -> ComparisonResult:
    """Decide ``tuned`` against ``base`` on ``suite`` by the chosen metric's declaration.

    ``level`` replaces the decision's one-sided level (a sequential look's spent level).
    """
    metric = metric or base.primary
    if metric not in base.metrics:
        raise ForgettingError(f"suite {suite.name}: no metric {metric!r}; it has: {', '.join(base.metrics)}")
    base_values, tuned_values = base.metrics[metric], tuned.metrics[metric]
    check_same_inputs(suite, base.records, tuned.records)
    declared = base.declared[metric]
    clusters = [item.cluster for item in suite.items]
    extra: dict[str, Any] = {"base": base.extra, "tuned": tuned.extra} if base.extra else {}
    if suite.kind == "lm_eval":
        extra["subtasks"] = per_subtask(base.records, base_values, tuned_values)
    template = blank_result(
        capability=capability or suite.name, suite=suite.name, metric=metric, base_model=base.model,
        tuned_model=tuned.model, candidate=candidate, test=test,
        records=paired_records(base.records, tuned.records, base_values, tuned_values),
        extra=extra, clusters=[str(c) for c in clusters] if all(c is not None for c in clusters) else None,
    )
    if declared.aggregate is not None:
        from pytest_forgetting.comparison.corpus import decide_corpus

        return decide_corpus([r["raw"][metric] for r in base.records], [r["raw"][metric] for r in tuned.records],
                             base_values, tuned_values, decision, metric=declared, template=template, level=level)
    return decide(base_values, tuned_values, decision, metric=declared, template=template, level=level)


#: Record fields that name what a model was shown; base and tuned must agree on them.
INPUT_HASHES = ("doc_hash", "prompt_hash")


def check_same_inputs(suite: Suite, base_records: Any, tuned_records: Any) -> None:
    """Fail with one line when base and tuned were shown different documents or prompts (lm-eval tasks)."""
    for b, t in zip(base_records, tuned_records):
        for field in INPUT_HASHES:
            if field in b and b.get(field) != t.get(field):
                raise ForgettingError(
                    f"suite {suite.name}: item {b.get('id')!r} was built differently for base and tuned ({field} "
                    f"{b.get(field)} vs {t.get(field)}); the comparison would not be paired: check that the task's "
                    "data, few-shot seed and chat settings are the same for both, and clear stale cache entries"
                )


def per_subtask(records: Any, base_values: Any, tuned_values: Any) -> dict[str, dict[str, float]]:
    """Per lm-eval leaf task: documents, base and tuned means and their change (a group's report)."""
    tasks: dict[str, list[tuple[float, float]]] = {}
    for record, b, t in zip(records, base_values, tuned_values):
        tasks.setdefault(str(record.get("task", "")), []).append((b, t))
    summary = {}
    for task, pairs in tasks.items():
        base_mean = sum(b for b, _ in pairs) / len(pairs)
        tuned_mean = sum(t for _, t in pairs) / len(pairs)
        summary[task] = {"n": len(pairs), "base": base_mean, "tuned": tuned_mean, "delta": tuned_mean - base_mean}
    return summary


def drift_decision(max_kl: Optional[ToleranceLike], metric: str, alpha: Optional[float]) -> Decision:
    """The decision of a drift check: an absolute bound in the metric's unit (default: its own)."""
    if metric not in DRIFT_METRICS:
        raise ForgettingError(f"drift metric {metric!r}; expected 'kl' or 'shift_rate'")
    decision = resolve_decision(tolerance=max_kl if max_kl is not None else DRIFT_METRICS[metric].default_tolerance,
                                alpha=alpha)
    if decision.tolerance is not None and decision.tolerance.relative:
        raise ForgettingError(f"max_kl={max_kl!r}: give an absolute bound (e.g. 0.1 nats); drift has no base "
                              "score to take a percentage of")
    return decision


def compare_drift_scores(drift: "DriftScores", suite: Suite, decision: Decision, *, metric: str = "kl",
                         capability: Optional[str] = None, base_model: str = "", tuned_model: str = "",
                         candidate: str = "", test: str = "", level: Optional[float] = None) -> ComparisonResult:
    """Pass while the upper bound of the mean per-item drift is below the bound (``decision.tolerance``).

    The base's drift from itself is 0 by definition, so this is a one-sample bound on the
    tuned model's mean drift (paired bootstrap against zeros).
    """
    values = drift.kl if metric == "kl" else drift.shift_rate
    template = blank_result(
        capability=capability or suite.name, suite=suite.name, metric=metric, base_model=base_model,
        tuned_model=tuned_model, candidate=candidate, test=test,
        records=[{**r, "base": 0.0, "tuned": r[metric], "expected": None, "base_answer": None,
                  "tuned_answer": r["output"]} for r in drift.records],
        extra={"top_shifted": drift.top_shifted, "mean_kl": sum(drift.kl) / len(drift.kl),
               "mean_shift_rate": sum(drift.shift_rate) / len(drift.shift_rate), "top_k": drift.top_k,
               **({"approximation": drift.approximation} if drift.approximation else {})},
    )
    result = decide([0.0] * len(values), values, decision, metric=DRIFT_METRICS[metric], template=template,
                    level=level)
    if drift.approximation:
        result.statistic += f"; KL approximated from {drift.approximation}"
    return result


def compare(base: "Backend", tuned: "Backend", suite: Suite, *, capability: Optional[str] = None,
            metric: Optional[str] = None, tolerance: Optional[ToleranceLike] = None, policy: Optional[str] = None,
            alpha: Optional[float] = None, registry: Any = None, batch_size: Optional[int] = None) -> ComparisonResult:
    """Score two backends you hold on ``suite`` with identical settings and compare them.

    Args:
        capability: name shown in reports (default: the suite's name).
        metric: which metric decides (default: the suite's primary metric, e.g. ``acc``).
        tolerance, policy, alpha: the decision (defaults: the metric's tolerance,
            non-inferiority, 0.05).
    """
    from pytest_forgetting.engine.session import EvaluationSession

    session = EvaluationSession(base, [tuned], registry=registry, batch_size=batch_size)
    return session.compare(session.candidates[0], suite, capability=capability, metric=metric,
                           tolerance=tolerance, policy=policy, alpha=alpha)


def compare_drift(base: "Backend", tuned: "Backend", suite: Suite, *, max_kl: Optional[ToleranceLike] = None,
                  capability: Optional[str] = None, metric: str = "kl", alpha: Optional[float] = None,
                  top_k: int = 3, max_new_tokens: Optional[int] = None,
                  batch_size: Optional[int] = None) -> ComparisonResult:
    """Label-free drift check of two backends you hold (see :meth:`EvaluationSession.drift`)."""
    from pytest_forgetting.engine.session import EvaluationSession

    session = EvaluationSession(base, [tuned], batch_size=batch_size)
    return session.drift(session.candidates[0], suite, max_kl=max_kl, capability=capability, metric=metric,
                         alpha=alpha, top_k=top_k, max_new_tokens=max_new_tokens)
