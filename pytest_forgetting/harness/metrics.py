"""An lm-eval task's results as declared metrics, and its per-document values as item scores.

Every result is keyed as lm-eval keys it, ``"<metric>,<filter>"`` (``"acc,none"``,
``"exact_match,strict-match"``); a task with several filters gives one metric per filter.
The declaration comes from the task, never from the data:

* direction: the task's ``higher_is_better``;
* a metric aggregated by ``mean`` is a per-document score: ``acc``, ``acc_norm``,
  ``exact_match`` and the like are binary (paired proportions decide), others continuous
  (paired bootstrap);
* any other aggregation (``weighted_perplexity``, ``bits_per_byte``, ``f1``, ``bleu``,
  ifeval's instruction-level lists) is a *corpus* metric: its per-document values can be
  pairs or lists, the score is the aggregation over the documents, and a paired bootstrap
  over documents recomputes it (:mod:`pytest_forgetting.comparison.corpus`). Each document
  still gets a number for the report (the aggregation of that document alone).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.metrics import Metric
from pytest_forgetting.tolerance import Tolerance

#: Mean-aggregated lm-eval metrics whose per-document value is right (1) or wrong (0).
BINARY_METRICS = frozenset({"acc", "acc_norm", "acc_bytes", "acc_mutual_info", "exact_match", "em",
                            "prompt_level_strict_acc", "prompt_level_loose_acc"})
#: Corpus metrics measured as a perplexity (a relative tolerance by default).
PERPLEXITIES = frozenset({"word_perplexity", "byte_perplexity", "perplexity"})


def declared_keys(name: str, tasks: Mapping[str, Any]) -> tuple[tuple[str, str, str, bool, str], ...]:
    """``(key, metric, filter, higher_is_better, aggregation)`` shared by every leaf task, in the first's order."""
    per_leaf = []
    for task in tasks.values():
        higher, aggregations = task.higher_is_better(), task.aggregation()
        filters = [f["name"] for f in (task.config.filter_list or []) if isinstance(f, Mapping) and "name" in f] \
            or [getattr(f, "name", "none") for f in getattr(task, "_filters", [])] or ["none"]
        per_leaf.append([(f"{metric},{filt}", metric, filt, bool(higher.get(metric, True)),
                          getattr(aggregations.get(metric), "__name__", "mean"))
                         for filt in filters for metric in aggregations])
    common = set(per_leaf[0]).intersection(*map(set, per_leaf[1:]))
    keys = tuple(entry for entry in per_leaf[0] if entry in common)
    if not keys:
        raise ForgettingError(f"lm-eval task {name!r}: its tasks share no metric with the same direction and "
                              "aggregation; check them one by one")
    return keys


def pick_primary(name: str, keys: Sequence[tuple[str, str, str, bool, str]], metric: Optional[str],
                 filt: Optional[str]) -> str:
    """The key chosen by ``metric``/``filter`` (each may be left out), or the first."""
    if metric is not None and "," in metric and filt is None:
        metric, filt = metric.split(",", 1)
    matches = [key for key, m, f, _, _ in keys if metric in (None, m) and filt in (None, f)]
    if not matches:
        available = ", ".join(key for key, *_ in keys)
        raise ForgettingError(f"lm-eval task {name!r} has no result for metric={metric!r}, filter={filt!r}; "
                              f"it has: {available}")
    return matches[0]


def declared_metrics(settings: Any, tasks: Mapping[str, Any]) -> dict[str, Metric]:
    """Key -> :class:`Metric` for an ``lm_eval`` suite's settings (aggregations from the loaded tasks)."""
    first = tasks[settings.leaves[0]]
    aggregations = first.aggregation()
    declared = {}
    for key, metric, _, higher, aggregation in settings.metrics:
        if aggregation == "mean":
            binary = metric in BINARY_METRICS
            declared[key] = Metric(key, higher_is_better=higher, binary=binary,
                                   unit="share of items" if binary else "score",
                                   low=0.0 if binary else -math.inf, high=1.0 if binary else math.inf,
                                   description=f"lm-eval's per-document {metric} ({_filter_text(key)}), mean "
                                               "over documents")
            continue
        if metric in PERPLEXITIES:
            unit, tolerance = "perplexity", Tolerance(0.05, relative=True)
        elif metric == "bits_per_byte":
            unit, tolerance = "bits/byte", Tolerance(0.02)
        else:
            unit, tolerance = "score", Tolerance(0.02)
        declared[key] = Metric(key, higher_is_better=higher, unit=unit, low=-math.inf, high=math.inf,
                               default_tolerance=tolerance, aggregate=aggregations[metric],
                               description=f"lm-eval's {metric} ({_filter_text(key)}), its {aggregation} "
                                           "aggregation over documents")
    return declared


def _filter_text(key: str) -> str:
    filt = key.split(",", 1)[1]
    return "no filter" if filt == "none" else f"filter {filt}"


def item_value(value: Any, metric: Metric) -> tuple[float, Any]:
    """A document's value as (its score, the raw value a corpus aggregation needs, JSON-able)."""
    if metric.aggregate is None:
        if isinstance(value, bool):
            value = float(value)
        return value, None
    raw = _jsonable(value)
    try:
        alone = float(metric.aggregate([value]))
    except Exception:  # an aggregation that needs several documents (e.g. a correlation)
        alone = 0.0
    return (alone if not math.isnan(alone) else 0.0), raw


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        return value.item()
    return value
