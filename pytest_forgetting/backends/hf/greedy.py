"""Greedy decoding (and teacher-forced answers) for a batch of prompts, their shared prefix computed once.

Scoring prompts often start alike: the same few-shot examples, the same chat system prompt.
:func:`greedy_continuations` runs the batch's longest common token prefix once (batch 1),
repeats its key/value cache for every row, then runs each row's own tokens (left-padded
after the prefix, positions continuing from it) and decodes step by step. Rows that end
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

import functools
import inspect
from typing import Any, Callable, Optional, Sequence

import torch

#: A common prefix shorter than this is not worth a separate pass.
MIN_SHARED_PREFIX = 4


def supports_greedy_loop(model: torch.nn.Module) -> bool:
    """True when ``model``'s forward takes positions, a mask, a KV cache and ``logits_to_keep``."""
    return _cache_argument(model) is not None


def _inner(model: torch.nn.Module) -> torch.nn.Module:
    get_base = getattr(model, "get_base_model", None)  # a PeftModel wraps the transformers model
    return get_base() if callable(get_base) else model


@functools.lru_cache(maxsize=None)
def _forward_parameters(model_class: type) -> frozenset[str]:
    """The keyword names a model class's ``forward`` takes (inspected once per class)."""
    try:
        return frozenset(inspect.signature(model_class.forward).parameters)
    except (TypeError, ValueError):
        return frozenset()


def takes_logits_to_keep(model: torch.nn.Module) -> bool:
    """True when ``model`` (or the transformers model a PEFT model wraps) accepts ``logits_to_keep``."""
    return "logits_to_keep" in _forward_parameters(type(_inner(model)))


def _cache_argument(model: torch.nn.Module) -> Optional[str]:
    parameters = _forward_parameters(type(_inner(model)))
    if not {"attention_mask", "position_ids", "logits_to_keep"} <= parameters:
        return None
    for name in ("cache", "past_key_values"):  # transformers 5 / 4
        if name in parameters:
            return name
    return None


def _new_cache(model: torch.nn.Module) -> Any:
    from transformers import DynamicCache

    if "config" in inspect.signature(DynamicCache.__init__).parameters:
        return DynamicCache(config=_inner(model).config)
    return DynamicCache()


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


def longest_common_prefix(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all ``sequences`` share."""
    first, length = sequences[0], min(len(s) for s in sequences)
    for index in range(length):
        token = first[index]
        if any(s[index] != token for s in sequences):
            return index
    return length


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
    """
    if max_length is not None:
        prompts = truncate_prompts(prompts, max_length, max_new_tokens)
    if max_new_tokens <= 0 or not prompts:
        return [[] for _ in prompts]
    cache_name = _cache_argument(model)
    assert cache_name is not None, "call supports_greedy_loop first"
    rows = len(prompts)
    logits, cache, mask = _prefill(model, prompts, [[] for _ in prompts], keep=1, device=device,
                                   pad_token_id=pad_token_id)
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
) -> torch.Tensor:
    """Logits ``[batch, k, vocab]`` for ``(prompt, continuation)`` pairs, k = longest continuation + 1.

    Each row is the prompt followed by its continuation, right-aligned, so row ``i``'s last
    ``len(continuation_i) + 1`` positions are its prompt's last token and its continuation.
    The prompts' shared prefix runs once; the output head runs on the last ``k`` positions only.
    """
    keep = max(len(c) for _, c in items) + 1
    logits, _, _ = _prefill(model, [p for p, _ in items], [c for _, c in items], keep=keep, device=device,
                            pad_token_id=pad_token_id)
    return logits


def _prefill(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    tails: Sequence[Sequence[int]],
    *,
    keep: int,
    device: torch.device,
    pad_token_id: int,
) -> tuple[torch.Tensor, Any, torch.Tensor]:
    """One pass over ``prompt + tail`` rows: (logits of the last ``keep`` positions, KV cache, mask).

    The prompts' longest common prefix (if at least :data:`MIN_SHARED_PREFIX` tokens, and
    leaving every row a token of its own) runs once at batch 1 and its cache is repeated per
    row; each row's own tokens follow, left-padded so all rows end together, with positions
    continuing from the prefix. The returned mask covers prefix, padding and rows.
    """
    cache_name = _cache_argument(model)
    assert cache_name is not None, "call supports_greedy_loop first"
    cache = _new_cache(model)
    rows = len(prompts)
    shared = min(longest_common_prefix(prompts), min(len(p) for p in prompts) - 1)
    if shared < MIN_SHARED_PREFIX:
        shared = 0
    mask = torch.ones((1, shared), dtype=torch.long, device=device)
    if shared:
        prefix = torch.tensor([list(prompts[0][:shared])], dtype=torch.long, device=device)
        model(input_ids=prefix, attention_mask=mask, position_ids=torch.arange(shared, device=device).unsqueeze(0),
              use_cache=True, logits_to_keep=1, **{cache_name: cache})
        cache.batch_repeat_interleave(rows)
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
                   use_cache=True, logits_to_keep=keep, **{cache_name: cache})
    return output.logits, cache, mask
