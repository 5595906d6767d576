"""Multiple choice with each context computed once: every choice of a question in one packed sequence.

Each group ``(context, continuations)`` becomes one sequence: the context's tokens, then every
continuation's tokens (minus its last) with position ids that restart after the context and
an attention mask that lets each continuation see the context and itself only. The numbers
equal scoring each pair alone (same tokens, same positions, same visible keys; tested against
lm-evaluation-harness); groups that would exceed the model's length are scored pair by pair.
Choices that tokenize alike are packed once and share their score (an exact tie).

The contexts of a batch often share a token prefix (few-shot examples, a system prompt).
With the backend's prefix cache on, the longest prefix the batch's packed token sequences
share (leaving each row its context's last token, whose distribution is read) runs once at
batch 1, or comes from the cache where an earlier call (another chunk of the suite, a
generation) kept it; its KV cache is repeated per row and each row runs only the rest, its
positions and mask continuing from the prefix. The prefix is taken on the final token ids,
after lm-eval's joint tokenization, never on strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import torch

from pytest_forgetting.backends.contract import Loglikelihood
from pytest_forgetting.backends.hf.batching import map_batched
from pytest_forgetting.backends.hf.kv import longest_common_prefix, supports_cache_loop
from pytest_forgetting.backends.hf.prefix_cache import prefix_states

if TYPE_CHECKING:
    from pytest_forgetting.backends.hf.backend import HFBackend


@torch.inference_mode()
def loglikelihood_groups(backend: "HFBackend", groups: Sequence[tuple[str, Sequence[str]]], *,
                         batch_size: Optional[int] = None) -> list[list[Loglikelihood]]:
    """Score several continuations of one context with the context computed once (see the module)."""
    packed, fallback, slots = [], [], {}
    for index, (context, continuations) in enumerate(groups):
        pairs = [backend.encode_pair(context, c) for c in continuations]
        context_ids = pairs[0][0]
        same_context = all(ctx == context_ids for ctx, _ in pairs)
        unique = list(dict.fromkeys(tuple(cont) for _, cont in pairs))  # equal choices: scored once, tie exactly
        total = len(context_ids) + sum(len(cont) - 1 for cont in unique)
        if same_context and all(pairs_cont for _, pairs_cont in pairs) and total <= backend.max_length:
            packed.append((index, context_ids, [list(cont) for cont in unique]))
            slots[index] = [unique.index(tuple(cont)) for _, cont in pairs]
        else:
            fallback.append(index)
    results: list[Optional[list[Loglikelihood]]] = [None] * len(groups)
    for index in fallback:
        context, continuations = groups[index]
        results[index] = backend.loglikelihood([(context, c) for c in continuations], batch_size=batch_size)

    def run(batch: list[tuple[int, list[int], list[list[int]]]]) -> list[list[Loglikelihood]]:
        layouts = [pack(context_ids, continuations) for _, context_ids, continuations in batch]
        shared, cache = _shared_prefix(backend, layouts, [len(context_ids) for _, context_ids, _ in batch])
        width = max(len(tokens) for tokens, _, _ in layouts) - shared
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)
        positions = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width, shared + width), dtype=torch.bool)
        mask[:, :, :shared] = True  # every row sees the whole prefix
        mask[:, :, shared:] = torch.eye(width, dtype=torch.bool)  # padding sees itself
        for row, (tokens, position, visible) in enumerate(layouts):
            size = len(tokens)
            input_ids[row, : size - shared] = torch.tensor(tokens[shared:])
            positions[row, : size - shared] = torch.tensor(position[shared:])
            mask[row, : size - shared, :size] = visible[shared:]
        # the positions read: the context's last, then every continuation token but the last
        needed = [range(len(context_ids) - 1 - shared, len(tokens) - shared)
                  for (tokens, _, _), (_, context_ids, _) in zip(layouts, batch)]
        logprobs = backend.logprobs_at(needed, cache=cache, input_ids=input_ids, position_ids=positions,
                                       attention_mask=mask[:, None])
        out = []
        for row, (_, context_ids, continuations) in enumerate(batch):
            scored, start = [], len(context_ids)
            first = len(context_ids) - 1  # logprobs[row][0] is this position
            for continuation in continuations:
                rows = [len(context_ids) - 1 - first, *range(start - first, start - first + len(continuation) - 1)]
                start += len(continuation) - 1
                span = logprobs[row][rows]
                target = torch.tensor(continuation, device=span.device)
                picked = span.gather(1, target.unsqueeze(-1)).squeeze(-1)
                scored.append(Loglikelihood(float(picked.sum()), bool((span.argmax(-1) == target).all()),
                                            len(continuation)))
            out.append(scored)
        return out

    lengths = [len(ctx) + sum(len(c) - 1 for c in conts) for _, ctx, conts in packed]
    for (index, _, _), scored in zip(packed, map_batched(packed, lengths, run,
                                                          batch_size=batch_size or backend.batch_size,
                                                          device=backend.device, bound_padding=True)):
        results[index] = [scored[slot] for slot in slots[index]]
    return results  # type: ignore[return-value]


def _shared_prefix(backend: "HFBackend", layouts: Sequence[tuple[list[int], list[int], torch.Tensor]],
                   context_lengths: Sequence[int]) -> tuple[int, Optional[Any]]:
    """``(n, cache)``: the KV cache of the first ``n`` tokens all ``layouts`` share, for every row.

    ``n`` stops a token short of the shortest context (each row reads its context's last
    position) and is 0, with no cache, when the backend keeps no prefix cache, the model's
    forward takes no cache, or no prefix is worth a separate pass.
    """
    store = backend.prefix_cache
    if store is None or not supports_cache_loop(backend.shared.model):
        return 0, None
    sequences = [tokens for tokens, _, _ in layouts]
    shared = min(longest_common_prefix(sequences), min(context_lengths) - 1)
    first = sequences[0]
    with backend.shared.running_as(backend.adapter):
        n, cache = prefix_states(backend.shared.model, first[:shared], len(layouts), device=backend.device,
                                 store=store, scope=backend.prefix_scope)
    return (n, cache) if n else (0, None)


def pack(context_ids: Sequence[int], continuations: Sequence[Sequence[int]]) -> tuple[list[int], list[int], torch.Tensor]:
    """Tokens, position ids and the [len, len] visibility mask of one packed group."""
    tokens, positions, owner = list(context_ids), list(range(len(context_ids))), [-1] * len(context_ids)
    for index, continuation in enumerate(continuations):
        inputs = list(continuation)[:-1]
        tokens += inputs
        positions += range(len(context_ids), len(context_ids) + len(inputs))
        owner += [index] * len(inputs)
    owners = torch.tensor(owner)
    causal = torch.ones(len(tokens), len(tokens), dtype=torch.bool).tril()
    same = (owners[None, :] == -1) | (owners[None, :] == owners[:, None])
    return tokens, positions, causal & same
