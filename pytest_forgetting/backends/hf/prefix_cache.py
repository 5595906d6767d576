"""The key/value cache of a suite's shared token prefix, computed once per model and kept.

Few-shot examples, a system prompt and a chat template's header start every prompt of a
suite, and the engine scores a suite in several calls (chunks) of batches. A backend keeps
the KV caches of the prefixes its calls shared in a :class:`PrefixCache` (a small LRU,
bounded in entries and bytes), keyed by a scope (the backend's adapter, dtype and device:
the base and each adapter compute different keys and values for the same tokens) and the
prefix's token ids. A later batch whose prompts start with a kept prefix runs only the rest:

- the prefix asked for is kept: it is reused as is;
- a kept prefix is the start of the one asked for: the difference runs on a copy of it
  (at batch 1, positions continuing) and the longer prefix is kept too;
- the one asked for is the start of a kept prefix (or they share a start): a copy cut to
  the common tokens serves (caches without sliding-window layers);
- nothing kept shares :data:`MIN_SHARED_PREFIX` tokens with it: it runs afresh, and is kept.

Keys and values of a position depend only on the tokens up to it (causal attention), so a
kept, extended or cut prefix holds the numbers a fresh pass computes, up to float rounding
(the same tokens in a differently shaped matrix product).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Hashable, Optional, Sequence

import torch

from pytest_forgetting.backends.hf.kv import (
    can_crop,
    cache_bytes,
    cropped,
    expanded,
    longest_common_prefix,
    new_cache,
    run_into,
)

#: A common prefix (or the part of one not yet kept) shorter than this is not worth a separate pass.
MIN_SHARED_PREFIX = 4
DEFAULT_MAX_ENTRIES = 4
DEFAULT_MAX_BYTES = 256 * 2**20

Key = tuple[Hashable, tuple[int, ...]]


@dataclass
class PrefixStats:
    """What a :class:`PrefixCache` did: lookups by outcome and prefix tokens run or reused."""

    hits: int = 0
    extended: int = 0
    misses: int = 0
    computed_tokens: int = 0
    reused_tokens: int = 0


class PrefixCache:
    """Batch-1 KV caches of token prefixes, least recently used first out.

    Args:
        max_entries: the most prefixes kept.
        max_bytes: the most bytes their tensors may hold together; a prefix larger than
            this is used but not kept.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.stats = PrefixStats()
        self._entries: OrderedDict[Key, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes the kept caches hold."""
        return sum(size for _, size in self._entries.values())

    def clear(self) -> None:
        """Forget every kept prefix (the counters stay)."""
        self._entries.clear()

    def states(self, model: torch.nn.Module, tokens: Sequence[int], *, scope: Hashable,
               device: torch.device) -> tuple[int, Optional[Any]]:
        """``(n, cache)``: a kept batch-1 KV cache of ``tokens[:n]``, or ``(0, None)`` for no prefix pass.

        ``n`` is ``len(tokens)`` unless a kept prefix covers all but fewer than
        :data:`MIN_SHARED_PREFIX` of them. The cache belongs to this object: copy it
        (:func:`~pytest_forgetting.backends.hf.kv.expanded`) before running more tokens into
        it. Call it while ``model`` computes as ``scope`` says (its adapter active).
        """
        wanted = tuple(int(t) for t in tokens)
        key, common = self._closest(scope, wanted)
        if key is None or common < MIN_SHARED_PREFIX:
            if len(wanted) < MIN_SHARED_PREFIX:
                return 0, None
            cache = new_cache(model)
            run_into(model, cache, wanted, start=0, device=device)
            self.stats.misses += 1
            self.stats.computed_tokens += len(wanted)
            return len(wanted), self._put((scope, wanted), cache)
        self._entries.move_to_end(key)
        kept = self._entries[key][0]
        self.stats.reused_tokens += common
        if len(wanted) - common >= MIN_SHARED_PREFIX:
            longer = cropped(kept, common) if common < len(key[1]) else expanded(kept, 1)
            run_into(model, longer, wanted[common:], start=common, device=device)
            self.stats.extended += 1
            self.stats.computed_tokens += len(wanted) - common
            return len(wanted), self._put((scope, wanted), longer)
        self.stats.hits += 1
        if common == len(key[1]):
            return common, kept
        return common, self._put((scope, wanted[:common]), cropped(kept, common))

    def _closest(self, scope: Hashable, wanted: tuple[int, ...]) -> tuple[Optional[Key], int]:
        """The kept prefix of ``scope`` sharing the most leading tokens with ``wanted`` (usable ones only)."""
        best: Optional[Key] = None
        best_common, best_exact = 0, False
        for key, (cache, _) in self._entries.items():
            if key[0] != scope:
                continue
            common = longest_common_prefix([key[1], wanted])
            exact = common == len(key[1])
            if not exact and not can_crop(cache):
                continue
            if (common, exact) > (best_common, best_exact):
                best, best_common, best_exact = key, common, exact
        return best, best_common

    def _put(self, key: Key, cache: Any) -> Any:
        """Keep ``cache`` under ``key`` (if it fits) and evict the least recently used beyond the bounds."""
        size = cache_bytes(cache)
        if size <= self.max_bytes:
            self._entries[key] = (cache, size)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries or self.nbytes > self.max_bytes:
                self._entries.popitem(last=False)
        return cache


def prefix_states(model: torch.nn.Module, tokens: Sequence[int], rows: int, *, device: torch.device,
                  store: Optional[PrefixCache] = None, scope: Hashable = None) -> tuple[int, Any]:
    """``(n, cache)``: a private KV cache of ``tokens[:n]`` for ``rows`` batch rows, ready to extend.

    With a ``store`` the prefix comes from it (kept for later calls); without one it runs
    afresh when it has at least :data:`MIN_SHARED_PREFIX` tokens. ``n`` is 0 (and the cache
    empty) when no prefix pass is worth it.
    """
    if store is not None:
        n, kept = store.states(model, tokens, scope=scope, device=device)
        return (n, expanded(kept, rows)) if kept is not None else (0, new_cache(model))
    cache = new_cache(model)
    if len(tokens) < MIN_SHARED_PREFIX:
        return 0, cache
    run_into(model, cache, tokens, start=0, device=device)
    if rows != 1:
        cache.batch_repeat_interleave(rows)
    return len(tokens), cache
