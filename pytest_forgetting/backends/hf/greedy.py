"""Greedy decoding (and teacher-forced answers) for a batch of prompts, their shared prefix computed once.

Scoring prompts often start alike: the same few-shot examples, the same chat system prompt.
:func:`greedy_continuations` runs the batch's longest common token prefix once (batch 1),
or takes it from the backend's :class:`~pytest_forgetting.backends.hf.prefix_cache.PrefixCache`
where an earlier call kept it, repeats its key/value cache for every row, then runs each
row's own tokens (left-padded after the prefix, positions continuing from it) and decodes
step by step. Rows that end
(EOS, a stop string, ``max_new_tokens``) leave the batch, so a batch costs what its longest
answer costs only for the rows still writing.

It is argmax decoding, nothing else: no repetition penalty or other processor from the
model's ``generation_config`` applies, so base and tuned are decoded the same way whatever
their configs say. The result equals ``model.generate(do_sample=False)`` on the same
prompts up to float rounding (the prefix is computed in a different matrix shape).

:func:`shared_prefix_logits` uses the same layout to read a given continuation's
log-probabilities (the drift check's teacher-forced answers).

A prompt longer than the model's context is left-truncated to its last
``max_length - max_new_tokens`` tokens (:func:`truncate_prompts`), as lm-evaluation-harness's
``HFLM.generate_until`` does, so the prompt and the answer fit the model's positions.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Optional, Sequence

import torch

from pytest_forgetting.backends.hf import kv
from pytest_forgetting.backends.hf.kv import cache_argument as _cache_argument
from pytest_forgetting.backends.hf.kv import longest_common_prefix
from pytest_forgetting.backends.hf.kv import inner as _inner  # noqa: F401 - the tests' handle on the model
from pytest_forgetting.backends.hf.kv import supports_cache_loop as supports_greedy_loop
from pytest_forgetting.backends.hf.kv import takes_logits_to_keep  # noqa: F401 - re-exported
from pytest_forgetting.backends.hf.prefix_cache import MIN_SHARED_PREFIX, PrefixCache, prefix_states

__all__ = ["MIN_SHARED_PREFIX", "greedy_continuations", "longest_common_prefix", "prompt_budget",
           "shared_prefix_logits", "supports_greedy_loop", "takes_logits_to_keep", "truncate_prompts"]


def prompt_budget(max_length: int, max_new_tokens: int) -> int:
    """The most prompt tokens that leave room for ``max_new_tokens`` in a ``max_length`` context.

    lm-eval's ``max_length - max_gen_toks``; fails with one line when no prompt token fits.
    """
    max_new_tokens = max(0, int(max_new_tokens))
    if max_new_tokens >= max_length:
        from pytest_forgetting.errors import ForgettingError

        raise ForgettingError(
            f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the model's "
            f"{max_length}-token context; set max_new_tokens below {max_length}"
        )
    return max_length - max_new_tokens


def truncate_prompts(prompts: Sequence[Sequence[int]], max_length: int, max_new_tokens: int) -> list[list[int]]:
    """Each prompt's last ``max_length - max_new_tokens`` token ids (lm-eval's left truncation)."""
    budget = prompt_budget(max_length, max_new_tokens)
    return [list(prompt)[-budget:] for prompt in prompts]


@torch.inference_mode()
def greedy_continuations(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    pad_token_id: int,
    device: torch.device,
    finished: Optional[Callable[[list[int]], bool]] = None,
    max_length: Optional[int] = None,
    prefix_cache: Optional[PrefixCache] = None,
    scope: Hashable = None,
) -> list[list[int]]:
    """The greedy continuation (token ids, EOS excluded) of every prompt in ``prompts``.

    Args:
        model: a causal LM (transformers, possibly PEFT-wrapped) in eval mode.
        prompts: token ids, each non-empty.
        max_new_tokens: the most tokens written per prompt.
        eos_token_ids: tokens that end a continuation (not included in it).
        pad_token_id: filler for left padding (never attended to).
        device: where the model lives.
        finished: called with a row's continuation after each new token; True ends the row
            (e.g. a stop string appeared).
        max_length: the model's context length; when given, each prompt keeps only its last
            ``max_length - max_new_tokens`` tokens (the shared prefix is that of the kept
            tokens), and ``max_new_tokens >= max_length`` fails.
        prefix_cache: where the shared prefix's KV cache is kept for later calls (None:
            computed for this batch only).
        scope: the prefix cache's key for the model as it runs now (its adapter, dtype, device).
    """
    if max_length is not None:
        prompts = truncate_prompts(prompts, max_length, max_new_tokens)
    if max_new_tokens <= 0 or not prompts:
        return [[] for _ in prompts]
    cache_name = _cache_argument(model)
    assert cache_name is not None, "call supports_greedy_loop first"
    rows = len(prompts)
    logits, cache, mask = _prefill(model, prompts, [[] for _ in prompts], keep=1, device=device,
                                   pad_token_id=pad_token_id, prefix_cache=prefix_cache, scope=scope)
    logits = logits[:, -1, :]
    next_position = torch.tensor([len(p) for p in prompts], dtype=torch.long, device=device)

    def forward(input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        output = model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                       use_cache=True, logits_to_keep=1, **{cache_name: cache})
        return output.logits[:, -1, :]

    outputs: list[list[int]] = [[] for _ in prompts]
    active = list(range(rows))  # prompt index of each batch row
    eos = set(int(t) for t in eos_token_ids)
    for step in range(max_new_tokens):
        tokens = logits.argmax(dim=-1)
        keep: list[int] = []
        for batch_row, token in enumerate(tokens.tolist()):
            index = active[batch_row]
            if token in eos:
                continue
            outputs[index].append(token)
            if finished is not None and finished(outputs[index]):
                continue
            keep.append(batch_row)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):
            selected = torch.tensor(keep, dtype=torch.long, device=device)
            cache.batch_select_indices(selected)
            tokens, mask, next_position = tokens[selected], mask[selected], next_position[selected]
            active = [active[row] for row in keep]
        mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long, device=device)], dim=1)
        logits = forward(tokens.unsqueeze(1), mask, next_position.unsqueeze(1))
        next_position = next_position + 1
    return outputs


@torch.inference_mode()
def shared_prefix_logits(
    model: torch.nn.Module,
    items: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    device: torch.device,
    pad_token_id: int = 0,
    prefix_cache: Optional[PrefixCache] = None,
    scope: Hashable = None,
) -> torch.Tensor:
    """Logits ``[batch, k, vocab]`` for ``(prompt, continuation)`` pairs, k = longest continuation + 1.

    Each row is the prompt followed by its continuation, right-aligned, so row ``i``'s last
    ``len(continuation_i) + 1`` positions are its prompt's last token and its continuation.
    The prompts' shared prefix runs once (or comes from ``prefix_cache``, see
    :func:`greedy_continuations`); the output head runs on the last ``k`` positions only.
    """
    keep = max(len(c) for _, c in items) + 1
    logits, _, _ = _prefill(model, [p for p, _ in items], [c for _, c in items], keep=keep, device=device,
                            pad_token_id=pad_token_id, prefix_cache=prefix_cache, scope=scope)
    return logits


def _prefill(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    tails: Sequence[Sequence[int]],
    *,
    keep: int,
    device: torch.device,
    pad_token_id: int,
    prefix_cache: Optional[PrefixCache] = None,
    scope: Hashable = None,
) -> tuple[torch.Tensor, Any, torch.Tensor]:
    """One pass over ``prompt + tail`` rows: (logits of the last ``keep`` positions, KV cache, mask).

    The prompts' longest common prefix (if at least :data:`MIN_SHARED_PREFIX` tokens, and
    leaving every row a token of its own) runs once at batch 1, or comes from
    ``prefix_cache``, and its cache is repeated per row
    (:func:`~pytest_forgetting.backends.hf.prefix_cache.prefix_states`); each row's own
    tokens follow, left-padded so all rows end together, with positions continuing from the
    prefix. The returned mask covers prefix, padding and rows.
    """
    cache_name = _cache_argument(model)
    assert cache_name is not None, "call supports_greedy_loop first"
    rows = len(prompts)
    shared = min(longest_common_prefix(prompts), min(len(p) for p in prompts) - 1)
    shared, cache = prefix_states(model, prompts[0][: max(0, shared)], rows, device=device,
                                  store=prefix_cache, scope=scope)
    mask = torch.ones((1, shared), dtype=torch.long, device=device)
    own = [list(p[shared:]) + list(t) for p, t in zip(prompts, tails)]
    width = max(len(tokens) for tokens in own)
    input_ids = torch.full((rows, width), pad_token_id, dtype=torch.long)
    own_mask = torch.zeros((rows, width), dtype=torch.long)
    positions = torch.zeros((rows, width), dtype=torch.long)
    for row, tokens in enumerate(own):
        start = width - len(tokens)
        input_ids[row, start:] = torch.tensor(tokens, dtype=torch.long)
        own_mask[row, start:] = 1
        positions[row, start:] = torch.arange(shared, shared + len(tokens))
    mask = torch.cat([mask.expand(rows, shared), own_mask.to(device)], dim=1)
    output = model(input_ids=input_ids.to(device), attention_mask=mask, position_ids=positions.to(device),
                   use_cache=True, logits_to_keep=kv.last_positions(keep, width, device), **{cache_name: cache})
    return output.logits, cache, mask
