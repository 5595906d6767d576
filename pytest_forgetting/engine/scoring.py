"""How the session scores a model on a suite: stored results first, the backend only for what is missing.

Before a backend scores anything, its declared capabilities are checked against what the
suite needs (:mod:`~pytest_forgetting.engine.requirements`). A suite whose every item is
stored (baseline or cache) loads no model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Optional, Sequence

from pytest_forgetting.engine.models import ModelSlot
from pytest_forgetting.engine.requirements import check_scorable, drift_mode
from pytest_forgetting.engine.stored import drift_key
from pytest_forgetting.scoring.kinds import SuiteScores, declared_metrics, score_suite, token_weighted_perplexity
from pytest_forgetting.scoring.suites import Suite
from pytest_forgetting.storage.cache import item_key

if TYPE_CHECKING:
    from pytest_forgetting.engine.session import EvaluationSession
    from pytest_forgetting.scoring.drift import DriftScores


def describe(session: "EvaluationSession", slot: ModelSlot) -> str:
    """How an error names a model: ``model PATH (base)`` or ``model PATH (candidate LABEL)``."""
    role = "base" if slot.role == "base" else f"candidate {slot.label}"
    return f"model {slot.name} ({role})"


def score_fresh(session: "EvaluationSession", slot: ModelSlot, suite: Suite, whole: Optional[Suite] = None) -> SuiteScores:
    """Score ``suite`` (part of ``whole``, by default all of it) with the slot's backend, after checking it can."""
    backend = slot.backend()
    check_scorable(describe(session, slot), backend.capabilities, suite)
    whole = whole or suite
    ran = (slot.label, whole.fingerprint)
    if ran not in session.ran:  # a suite counts once however many chunks it is scored in
        session.ran.add(ran)
        session.runs[slot.label] += 1
    label = session.label_of(slot) + (f", {len(suite)} more of {len(whole)}" if whole is not suite else "")
    return score_suite(backend, suite, registry=session.registry, batch_size=session.batch_size, label=label)


def part_of(suite: Suite, indices: Sequence[int]) -> Suite:
    """The suite's items ``indices``, in that order (a look's items, or the ones still to score)."""
    return replace(suite, items=tuple(suite.items[i] for i in indices))


def score_items(session: "EvaluationSession", slot: ModelSlot, suite: Suite, indices: Sequence[int]) -> SuiteScores:
    """``slot``'s scores on the items ``indices`` of ``suite`` (in that order), each scored once per session.

    What a sequential verdict scores look by look: the items already scored (this session,
    the cache, the baseline) are reused; only the rest go to the backend, as one part. The
    base is scored on every item when the baseline is being rewritten.
    """
    rows = session.item_rows(slot, suite)
    wanted = list(indices)
    if slot.role == "base" and session.stored.baseline is not None and session.stored.baseline.update:
        wanted = list(range(len(suite)))
    missing = [index for index in wanted if index not in rows]
    if missing:
        everything = missing == list(range(len(suite)))
        scored = score_stored(session, slot, suite if everything else part_of(suite, missing), whole=suite)
        for position, index in enumerate(missing):
            rows[index] = ({name: values[position] for name, values in scored.metrics.items()}, scored.records[position])
    declared, primary = declared_metrics(suite, session.registry)
    chosen = [rows[index] for index in indices]
    records = [record for _, record in chosen]
    extra = {"perplexity": token_weighted_perplexity(records)} if suite.kind == "text" else {}
    return SuiteScores(suite.name, suite.kind, slot.name, {name: [row[name] for row, _ in chosen] for name in declared},
                       declared, records, 0.0, primary, extra)


def score_stored(session: "EvaluationSession", slot: ModelSlot, suite: Suite, whole: Optional[Suite] = None) -> SuiteScores:
    """``slot``'s scores on ``suite``, reusing stored per-item results and storing fresh ones."""
    stored = session.stored
    if not stored.active:
        return score_fresh(session, slot, suite, whole)
    identity, base = slot.identity(), slot.role == "base"
    entries, missing = stored.lookup(identity, suite, slot.name, base=base)
    fresh: dict[str, Any] = {}
    if missing:
        scored = score_fresh(session, slot, replace(suite, items=tuple(missing)), whole or suite)
        for index, item in enumerate(missing):
            fresh[item_key(item)] = {
                "metrics": {name: values[index] for name, values in scored.metrics.items()},
                "record": scored.records[index],
            }
        entries = {**entries, **fresh}
    ordered = {item_key(item): entries[item_key(item)] for item in suite.items}
    stored.keep(identity, suite, slot.name, fresh, ordered, base=base)
    declared, primary = declared_metrics(suite, session.registry)
    rows = list(ordered.values())
    metrics = {name: [declared[name].checked(row["metrics"][name], suite=suite.name, item=row["record"].get("id"),
                                             source="a stored result") for row in rows]
               for name in declared}
    records = [row["record"] for row in rows]
    extra = {"perplexity": token_weighted_perplexity(records)} if suite.kind == "text" else {}
    return SuiteScores(suite.name, suite.kind, slot.name, metrics, declared, records, 0.0, primary, extra)


def drift_stored(session: "EvaluationSession", slot: ModelSlot, suite: Suite, *, metric: str, top_k: int,
                 max_new_tokens: Optional[int], outputs: Optional[Sequence[str]]) -> "DriftScores":
    """Drift of ``slot`` against the base, reusing cached per-item drift (keyed by both models).

    How drift is measured (exact, or from top-k log-probabilities) follows from what both
    backends declare, checked when they are loaded to measure; a cached entry records it.
    """
    from pytest_forgetting.scoring.drift import drift_from_records, score_drift

    def measure(part: Suite, part_outputs: Optional[Sequence[str]]) -> "DriftScores":
        base, tuned = session.base.backend(), slot.backend()
        models = {describe(session, session.base): base.capabilities, describe(session, slot): tuned.capabilities}
        writes = (suite.settings.max_new_tokens if suite.kind == "generation" else 0) if max_new_tokens is None \
            else max_new_tokens
        k = drift_mode(models, part, metric=metric, top_k=top_k, generate=part_outputs is None and writes > 0)
        return score_drift(base, tuned, part, top_k=top_k, max_new_tokens=max_new_tokens,
                           batch_size=session.batch_size, outputs=part_outputs, approximate_k=k)

    if session.stored.cache is None:
        return measure(suite, outputs)
    key = drift_key(session.base.identity(), slot.identity(), suite, top_k=top_k, max_new_tokens=max_new_tokens)
    entries, missing = session.stored.drift_lookup(key, suite)
    if missing:
        part = replace(suite, items=tuple(suite.items[i] for i in missing))
        scored = measure(part, [outputs[i] for i in missing] if outputs is not None else None)
        fresh = {item_key(part.items[j]): {"record": record, "approximation": scored.approximation}
                 for j, record in enumerate(scored.records)}
        session.stored.drift_keep(key, fresh)
        entries = {**entries, **fresh}
    rows = [entries[item_key(item)] for item in suite.items]
    return drift_from_records(suite, [row["record"] for row in rows], top_k,
                              approximation=rows[0].get("approximation"))
