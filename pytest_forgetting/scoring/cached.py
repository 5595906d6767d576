"""Scoring through the result cache and the committed baseline: only missing items run."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Optional

from pytest_forgetting.cache import ResultCache, item_key, run_key
from pytest_forgetting.scoring.engine import SuiteScores
from pytest_forgetting.scoring.suites import Suite


def identity_of(handle: Any) -> tuple[str, str, str]:
    """(fingerprint, dtype, device type) of a handle, without loading a lazy one."""
    if hasattr(type(handle), "identity"):
        return handle.identity()  # type: ignore[no-any-return]
    device = getattr(handle, "device", None)
    return handle.fingerprint, str(getattr(handle, "dtype", "unknown")), getattr(device, "type", str(device))


def score_cached(
    handle: Any,
    suite: Suite,
    score: Callable[..., SuiteScores],
    *,
    cache: Optional[ResultCache] = None,
    baseline: Any = None,
    stats: Optional[dict[str, int]] = None,
    **kwargs: Any,
) -> SuiteScores:
    """Score ``suite`` with ``handle``, reusing stored per-item results where they exist.

    ``baseline`` (for the base model) is consulted first, then ``cache``. Only the items
    found in neither are scored (with ``score``), then stored. ``stats`` counts ``hits``
    and ``scored`` items.
    """
    if cache is None and baseline is None:
        return score(handle, suite, **kwargs)
    identity = identity_of(handle)
    key = run_key(*identity, suite)
    entries: dict[str, Any] = {}
    if baseline is not None:
        entries = baseline.entries(suite, identity, handle.name) or {}
    if cache is not None:
        entries = {**cache.load(key), **entries}
    keys = [item_key(item) for item in suite.items]
    missing = [item for item, k in zip(suite.items, keys) if k not in entries]
    fresh: dict[str, Any] = {}
    if missing:
        scored = score(handle, replace(suite, items=tuple(missing)), **kwargs)
        for index, item in enumerate(missing):
            fresh[item_key(item)] = {
                "metrics": {name: values[index] for name, values in scored.metrics.items()},
                "higher_is_better": scored.higher_is_better, "primary": scored.primary,
                "record": scored.records[index],
            }
        if cache is not None:
            cache.store(key, fresh)
        entries = {**entries, **fresh}
    if stats is not None:
        stats["hits"] = stats.get("hits", 0) + len(keys) - len(missing)
        stats["scored"] = stats.get("scored", 0) + len(missing)
    ordered = [entries[k] for k in keys]
    if baseline is not None and baseline.update:
        baseline.write(suite, identity, handle.name, dict(zip(keys, ordered)))
    first = ordered[0]
    metrics = {name: [e["metrics"][name] for e in ordered] for name in first["metrics"]}
    records = [e["record"] for e in ordered]
    extra: dict[str, Any] = {}
    if suite.kind == "text":
        tokens = sum(r["tokens"] for r in records)
        extra["perplexity"] = math.exp(sum(r["nll"] * r["tokens"] for r in records) / max(1, tokens))
    return SuiteScores(suite.name, suite.kind, handle.name, metrics, first["higher_is_better"], records,
                       0.0, first["primary"], extra)
