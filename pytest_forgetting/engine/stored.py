"""Scoring through the result cache and the committed baseline: only missing items run."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Optional

from pytest_forgetting.storage.cache import ResultCache, item_key, run_key
from pytest_forgetting.scoring.kinds import SuiteScores
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


def drift_cached(
    base: Any,
    tuned: Any,
    suite: Suite,
    *,
    cache: Optional[ResultCache] = None,
    stats: Optional[dict[str, int]] = None,
    top_k: int = 3,
    max_new_tokens: Optional[int] = None,
    batch_size: Optional[int] = None,
    outputs: Optional[list[str]] = None,
) -> Any:
    """:func:`~pytest_forgetting.scoring.drift.score_drift`, reusing cached per-item drift.

    The key holds both models' identities, the suite's settings, ``top_k`` and
    ``max_new_tokens``, so a changed adapter (or base) is measured again; only items missing
    from the cache are scored, so with every item cached neither model is loaded.
    """
    from pytest_forgetting.scoring.drift import drift_from_records, score_drift

    if cache is None:
        return score_drift(base, tuned, suite, top_k=top_k, max_new_tokens=max_new_tokens,
                           batch_size=batch_size, outputs=outputs)
    base_identity, tuned_identity = identity_of(base), identity_of(tuned)
    model = f"drift:{base_identity[0]}:{tuned_identity[0]}:top_k={top_k}:max_new_tokens={max_new_tokens}"
    key = run_key(model, tuned_identity[1], tuned_identity[2], suite)
    entries = cache.load(key)
    keys = [item_key(item) for item in suite.items]
    missing = [index for index, k in enumerate(keys) if k not in entries]
    if missing:
        part = replace(suite, items=tuple(suite.items[i] for i in missing))
        scored = score_drift(base, tuned, part, top_k=top_k, max_new_tokens=max_new_tokens, batch_size=batch_size,
                             outputs=[outputs[i] for i in missing] if outputs is not None else None)
        fresh = {keys[i]: {"record": record} for i, record in zip(missing, scored.records)}
        cache.store(key, fresh)
        entries = {**entries, **fresh}
    if stats is not None:
        stats["hits"] = stats.get("hits", 0) + len(keys) - len(missing)
        stats["scored"] = stats.get("scored", 0) + len(missing)
    return drift_from_records(suite, [entries[k]["record"] for k in keys], top_k)
