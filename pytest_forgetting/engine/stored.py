"""Per-item results kept between runs: the result cache and the committed baseline, as one lookup.

:class:`StoredResults` answers "which items of this suite does this model already have a
result for" and keeps what was scored fresh. The baseline (base model only) is consulted
first, then the cache; only the items found in neither are scored. The session does the
scoring; this module only reads and writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from pytest_forgetting.backends.contract import Identity
from pytest_forgetting.scoring.suites import Item, Suite
from pytest_forgetting.storage.baseline import Baseline
from pytest_forgetting.storage.cache import ResultCache, item_key, run_key, scoring_environment, write_failure

#: The notices of the newest session's stored results (what ``report.json`` lists under ``notices``).
_current: list[list[str]] = [[]]


def current_notices() -> list[str]:
    """Notices of the newest :class:`StoredResults` of this process (a baseline from another environment)."""
    return list(_current[0])


@dataclass
class CacheStats:
    """Item results reused from storage (``hits``) and scored afresh (``scored``) this session."""

    hits: int = 0
    scored: int = 0


class StoredResults:
    """The session's result cache and committed baseline (either may be absent)."""

    def __init__(self, cache: Optional[ResultCache] = None, baseline: Optional[Baseline] = None, *,
                 base_only: bool = False) -> None:
        self.cache = cache
        self.baseline = baseline
        #: Keep and reuse the base's results only (a training run's live models are never seen again).
        self.base_only = base_only
        self.stats = CacheStats()
        #: One line per thing a report should mention (see :func:`current_notices`).
        self.notices: list[str] = []
        self._cache_failed = False
        _current[0] = self.notices

    @property
    def active(self) -> bool:
        """Whether anything is stored or looked up at all."""
        return self.cache is not None or self.baseline is not None

    def lookup(self, identity: Identity, suite: Suite, model: str, *, base: bool) -> tuple[dict[str, Any], list[Item]]:
        """Stored entries for ``suite``'s items (by item key), and the items still to score."""
        entries: dict[str, Any] = {}
        if base and self.baseline is not None:
            entries = usable(self.baseline.entries(suite, identity.as_tuple(), model) or {})
            self.notices.extend(n for n in self.baseline.notices if n not in self.notices)
        if self.cache is not None and (base or not self.base_only):
            entries = {**usable(self.cache.load(run_key(*identity.as_tuple(), suite))), **entries}
        missing = [item for item in suite.items if item_key(item) not in entries]
        self.stats.hits += len(suite.items) - len(missing)
        self.stats.scored += len(missing)
        return entries, missing

    def keep(self, identity: Identity, suite: Suite, model: str, fresh: dict[str, Any],
             every: dict[str, Any], *, base: bool) -> None:
        """Store ``fresh`` entries in the cache; rewrite the baseline with ``every`` entry when updating it."""
        if self.cache is not None and (base or not self.base_only):
            self._store(run_key(*identity.as_tuple(), suite), fresh)
        if base and self.baseline is not None and self.baseline.update:
            self.baseline.write(suite, identity.as_tuple(), model, every)

    def drift_lookup(self, key: str, suite: Suite) -> tuple[dict[str, Any], list[int]]:
        """Cached per-item drift under ``key``, and the indices of the items still to measure."""
        entries = usable(self.cache.load(key), metrics=False) if self.cache is not None and not self.base_only else {}
        missing = [index for index, item in enumerate(suite.items) if item_key(item) not in entries]
        self.stats.hits += len(suite.items) - len(missing)
        self.stats.scored += len(missing)
        return entries, missing

    def drift_keep(self, key: str, fresh: dict[str, Any]) -> None:
        """Store freshly measured per-item drift under ``key``."""
        if self.cache is not None and not self.base_only:
            self._store(key, fresh)

    def _store(self, key: str, fresh: dict[str, Any]) -> None:
        """Write to the cache; a failed write is one notice (the first time) and the run goes on."""
        assert self.cache is not None
        try:
            self.cache.store(key, fresh)
        except OSError as exc:
            if not self._cache_failed:
                self._cache_failed = True
                from pytest_forgetting.scoring import progress

                progress.notify("warning: " + write_failure(
                    "the result cache", self.cache.folder, exc,
                    "point --forgetting-cache-dir elsewhere (or --no-forgetting-cache)") +
                    "; this run goes on without caching")


def usable(entries: dict[str, Any], *, metrics: bool = True) -> dict[str, Any]:
    """The entries with the shape this module writes: a ``record`` mapping and (``metrics``) numeric metrics."""
    def fits(entry: Any) -> bool:
        if not isinstance(entry, dict) or not isinstance(entry.get("record"), dict):
            return False
        if not metrics:
            return True
        values = entry.get("metrics")
        return isinstance(values, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v) for v in values.values())
    return {key: entry for key, entry in entries.items() if fits(entry)}


def drift_key(base: Identity, tuned: Identity, suite: Suite, *, top_k: int, max_new_tokens: Optional[int]) -> str:
    """The cache key of drift between two models: both identities and environments, and the suite's settings."""
    model = f"drift:{base.fingerprint}:{tuned.fingerprint}:top_k={top_k}:max_new_tokens={max_new_tokens}"
    environment = {"base": [base.dtype, base.device, scoring_environment(base.device)],
                   "tuned": scoring_environment(tuned.device)}
    return run_key(model, tuned.dtype, tuned.device, suite, environment)
