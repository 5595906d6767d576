"""Driving a causal LM's key/value cache: which forward arguments it takes, and cache copies.

transformers models take a KV cache under ``past_key_values`` (4.x) or ``cache`` (5.x),
possibly wrapped in a ``PeftModel``. The helpers here find that argument, make empty caches,
run a token prefix into a cache at batch 1, and copy a cache without touching the original:
repeated for several batch rows (:func:`expanded`) or cut to its first tokens
(:func:`cropped`). Only the ``Cache`` object's own methods are used (``batch_repeat_interleave``,
``batch_select_indices``, ``crop``, ``get_seq_length``), so the copies behave as the model's
own caches do.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any, Optional, Sequence

import torch


def inner(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model itself (a ``PeftModel`` wraps it)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


@functools.lru_cache(maxsize=None)
def forward_parameters(model_class: type) -> frozenset[str]:
    """The keyword names a model class's ``forward`` takes (inspected once per class)."""
    try:
        return frozenset(inspect.signature(model_class.forward).parameters)
    except (TypeError, ValueError):
        return frozenset()


def takes_logits_to_keep(model: torch.nn.Module) -> bool:
    """True when ``model`` (or the transformers model a PEFT model wraps) accepts ``logits_to_keep``."""
    return "logits_to_keep" in forward_parameters(type(inner(model)))


def cache_argument(model: torch.nn.Module) -> Optional[str]:
    """The forward's KV-cache keyword, or None unless it also takes a mask, positions and ``logits_to_keep``."""
    parameters = forward_parameters(type(inner(model)))
    if not {"attention_mask", "position_ids", "logits_to_keep"} <= parameters:
        return None
    for name in ("cache", "past_key_values"):  # transformers 5 / 4
        if name in parameters:
            return name
    return None


def supports_cache_loop(model: torch.nn.Module) -> bool:
    """True when ``model``'s forward takes positions, a mask, a KV cache and ``logits_to_keep``."""
    return cache_argument(model) is not None


def new_cache(model: torch.nn.Module) -> Any:
    """An empty ``DynamicCache`` laid out for ``model`` (its config, where this transformers takes one)."""
    from transformers import DynamicCache

    if "config" in inspect.signature(DynamicCache.__init__).parameters:
        return DynamicCache(config=inner(model).config)
    return DynamicCache()


@torch.inference_mode()
def run_into(model: torch.nn.Module, cache: Any, tokens: Sequence[int], *, start: int,
             device: torch.device) -> None:
    """Run ``tokens`` at batch 1, positions ``start, start + 1, ...``, appending their keys/values to ``cache``.

    ``cache`` holds the ``start`` tokens before them (none for ``start=0``); the output head
    runs on the last position only.
    """
    name = cache_argument(model)
    assert name is not None, "call supports_cache_loop first"
    length = len(tokens)
    model(input_ids=torch.tensor([list(tokens)], dtype=torch.long, device=device),
          attention_mask=torch.ones((1, start + length), dtype=torch.long, device=device),
          position_ids=torch.arange(start, start + length, device=device).unsqueeze(0),
          use_cache=True, logits_to_keep=1, **{name: cache})


def last_positions(keep: int, width: int, device: torch.device) -> torch.Tensor:
    """``logits_to_keep`` for the last ``keep`` of ``width`` positions, as position indices.

    Given an int, transformers slices the hidden states (``[:, -keep:, :]``): for more than
    one row a view whose rows are not contiguous, and the output head's matrix product on
    such a view is far slower on a CPU (64 rows, SmolLM2's 49,152 x 576 head: 240 ms against
    30 ms in float32, 5.5 s against 6 ms in bfloat16). Indices gather a contiguous copy
    first; the logits are the same.
    """
    return torch.arange(max(0, width - keep), width, device=device)


def expanded(cache: Any, rows: int) -> Any:
    """A copy of a batch-1 ``cache`` with its row repeated ``rows`` times (``cache`` is left as it was)."""
    copied = copy.deepcopy(cache)
    if rows != 1:
        copied.batch_repeat_interleave(rows)
    return copied


def can_crop(cache: Any) -> bool:
    """True when :func:`cropped` can cut ``cache`` back exactly (no sliding-window layer)."""
    return bool(getattr(cache, "is_croppable", False)) and not any(getattr(cache, "is_sliding", [True]))


def cropped(cache: Any, length: int) -> Any:
    """A copy of a batch-1 ``cache`` holding only its first ``length`` tokens (call :func:`can_crop` first)."""
    copied = copy.deepcopy(cache)
    surplus = copied.get_seq_length() - length
    if surplus > 0:
        copied.crop(-surplus)  # views of the longer tensors ...
        copied.batch_select_indices(torch.tensor([0]))  # ... copied out, so the rest is freed
    return copied


def cache_bytes(cache: Any) -> int:
    """Bytes held by the tensors of ``cache`` (its layers' keys and values)."""
    total = 0
    for holder in [cache, *getattr(cache, "layers", [])]:
        for value in vars(holder).values():
            items = value if isinstance(value, (list, tuple)) else [value]
            total += sum(t.numel() * t.element_size() for t in items if isinstance(t, torch.Tensor))
    return total


def longest_common_prefix(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all ``sequences`` share."""
    first, length = sequences[0], min(len(s) for s in sequences)
    for index in range(length):
        token = first[index]
        if any(s[index] != token for s in sequences):
            return index
    return length
