"""Sequential verdicts in the session: score look by look, stop when the capability is decided.

The design and its guarantees are in :mod:`pytest_forgetting.comparison.sequential`. Here
the session scores each look's new items (base and candidate on the same chunk, so their
batches match), asks whether the capability is decided, and builds the result from the
items seen: the forgotten items listed are those scored. The base's scores are kept per
item, so another candidate stopping later only scores the base's missing items.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

from pytest_forgetting.comparison.decision import Decision
from pytest_forgetting.comparison.result import ComparisonResult
from pytest_forgetting.comparison.sequential import plan_looks, run_looks
from pytest_forgetting.engine import scoring
from pytest_forgetting.engine.models import ModelSlot
from pytest_forgetting.engine.scoring import part_of
from pytest_forgetting.scoring.metrics import Metric
from pytest_forgetting.scoring.suites import Suite

if TYPE_CHECKING:
    from pytest_forgetting.engine.session import EvaluationSession


def compare_in_looks(session: "EvaluationSession", slot: ModelSlot, suite: Suite, decision: Decision, *,
                     capability: Optional[str], metric: Optional[str], test: str) -> ComparisonResult:
    """:meth:`EvaluationSession.compare` with sequential verdicts."""
    from pytest_forgetting.comparison.run import compare_scores
    from pytest_forgetting.scoring.kinds import declared_metrics
    from pytest_forgetting.scoring.metrics import default_tolerance

    declared, primary = declared_metrics(suite, session.registry)
    name = metric or primary
    chosen = declared.get(name)
    tolerance = decision.tolerance or (default_tolerance(chosen, decision.session_tolerance) if chosen else None)

    def scores(indices: tuple[int, ...]) -> tuple[Any, Any]:
        return (scoring.score_items(session, session.base, suite, indices),
                scoring.score_items(session, slot, suite, indices))

    def values(indices: tuple[int, ...]) -> tuple[list[float], list[float], Metric, Optional[list[str]]]:
        base, tuned = scores(indices)
        part = part_of(suite, indices)
        if name not in base.metrics:  # compare_scores says which metrics there are
            compare_scores(base, tuned, part, decision, metric=name)
        clusters = [item.cluster for item in part.items]
        return (base.metrics[name], tuned.metrics[name], base.declared[name],
                [str(c) for c in clusters] if all(c is not None for c in clusters) else None)

    def result_at(indices: tuple[int, ...], level: float) -> ComparisonResult:
        base, tuned = scores(indices)
        return compare_scores(base, tuned, part_of(suite, indices), decision, capability=capability, metric=name,
                              candidate=slot.label, test=test, level=level)

    if chosen is not None and chosen.aggregate is not None:  # a corpus metric is decided on every document
        everything = tuple(range(len(suite)))
        return result_at(everything, decision.test_alpha)
    plan = plan_looks(len(suite), suite.fingerprint, session.sequential, look_kind(suite))
    return run_looks(plan, decision, lambda mean: tolerance.absolute(mean) if tolerance else math.inf,
                     values, result_at)


def look_kind(suite: Suite) -> str:
    """How a suite's looks are spaced: as generation when it generates (an lm-eval ``generate_until`` task)."""
    if suite.kind == "lm_eval" and "generate_until" in getattr(suite.settings, "output_types", ()):
        return "generation"
    return suite.kind


def drift_in_looks(session: "EvaluationSession", slot: ModelSlot, suite: Suite, decision: Decision, *,
                   metric: str, capability: Optional[str], top_k: int, max_new_tokens: Optional[int],
                   test: str) -> ComparisonResult:
    """:meth:`EvaluationSession.drift` with sequential verdicts (the bound is ``decision.tolerance``)."""
    from pytest_forgetting.comparison.run import DRIFT_METRICS, compare_drift_scores
    from pytest_forgetting.scoring.drift import drift_from_records

    measured_so_far = session.drift_rows(slot, suite, metric, top_k, max_new_tokens)
    rows = measured_so_far.rows
    own_outputs = suite.kind == "generation" and max_new_tokens in (None, suite.settings.max_new_tokens)

    def measure(indices: tuple[int, ...]) -> Any:
        missing = [index for index in indices if index not in rows]
        if missing:
            outputs = None
            if own_outputs:
                records = scoring.score_items(session, slot, suite, tuple(missing)).records
                outputs = [record["output"] for record in records]
            drift = scoring.drift_stored(session, slot, part_of(suite, missing), metric=metric, top_k=top_k,
                                         max_new_tokens=max_new_tokens, outputs=outputs)
            measured_so_far.approximation = drift.approximation
            rows.update(dict(zip(missing, drift.records)))
        return drift_from_records(part_of(suite, indices), [rows[index] for index in indices], top_k,
                                  approximation=measured_so_far.approximation)

    def values(indices: tuple[int, ...]) -> tuple[list[float], list[float], Metric, None]:
        drift = measure(indices)
        measured = drift.kl if metric == "kl" else drift.shift_rate
        return [0.0] * len(measured), measured, DRIFT_METRICS[metric], None

    def result_at(indices: tuple[int, ...], level: float) -> ComparisonResult:
        return compare_drift_scores(measure(indices), part_of(suite, indices), decision, metric=metric, capability=capability,
                                    base_model=session.base.name, tuned_model=slot.name, candidate=slot.label,
                                    test=test, level=level)

    bound = decision.tolerance
    plan = plan_looks(len(suite), suite.fingerprint, session.sequential, suite.kind)
    return run_looks(plan, decision, lambda mean: bound.absolute(mean) if bound else math.inf,
                     values, result_at)
