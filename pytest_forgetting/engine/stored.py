"""Per-item results kept between runs: the result cache and the committed baseline, as one lookup.

:class:`StoredResults` answers "which items of this suite does this model already have a
result for" and keeps what was scored fresh. The baseline (base model only) is consulted
first, then the cache; only the items found in neither are scored. The session does the
scoring; this module only reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from pytest_forgetting.backends.contract import Identity
from pytest_forgetting.scoring.suites import Item, Suite
from pytest_forgetting.storage.baseline import Baseline
from pytest_forgetting.storage.cache import ResultCache, item_key, run_key


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

    @property
    def active(self) -> bool:
        """Whether anything is stored or looked up at all."""
        return self.cache is not None or self.baseline is not None

    def lookup(self, identity: Identity, suite: Suite, model: str, *, base: bool) -> tuple[dict[str, Any], list[Item]]:
        """Stored entries for ``suite``'s items (by item key), and the items still to score."""
        entries: dict[str, Any] = {}
        if base and self.baseline is not None:
            entries = self.baseline.entries(suite, identity.as_tuple(), model) or {}
        if self.cache is not None and (base or not self.base_only):
            entries = {**self.cache.load(run_key(*identity.as_tuple(), suite)), **entries}
        missing = [item for item in suite.items if item_key(item) not in entries]
        self.stats.hits += len(suite.items) - len(missing)
        self.stats.scored += len(missing)
        return entries, missing

    def keep(self, identity: Identity, suite: Suite, model: str, fresh: dict[str, Any],
             every: dict[str, Any], *, base: bool) -> None:
        """Store ``fresh`` entries in the cache; rewrite the baseline with ``every`` entry when updating it."""
        if self.cache is not None and (base or not self.base_only):
            self.cache.store(run_key(*identity.as_tuple(), suite), fresh)
        if base and self.baseline is not None and self.baseline.update:
            self.baseline.write(suite, identity.as_tuple(), model, every)

    def drift_lookup(self, key: str, suite: Suite) -> tuple[dict[str, Any], list[int]]:
        """Cached per-item drift under ``key``, and the indices of the items still to measure."""
        entries = self.cache.load(key) if self.cache is not None and not self.base_only else {}
        missing = [index for index, item in enumerate(suite.items) if item_key(item) not in entries]
        self.stats.hits += len(suite.items) - len(missing)
        self.stats.scored += len(missing)
        return entries, missing

    def drift_keep(self, key: str, fresh: dict[str, Any]) -> None:
        """Store freshly measured per-item drift under ``key``."""
        if self.cache is not None and not self.base_only:
            self.cache.store(key, fresh)


def drift_key(base: Identity, tuned: Identity, suite: Suite, *, top_k: int, max_new_tokens: Optional[int]) -> str:
    """The cache key of drift between two models: both identities and the suite's settings."""
    model = f"drift:{base.fingerprint}:{tuned.fingerprint}:top_k={top_k}:max_new_tokens={max_new_tokens}"
    return run_key(model, tuned.dtype, tuned.device, suite)
