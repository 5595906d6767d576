"""Multiple choice with each context computed once: every choice of a question in one packed sequence.

Each group ``(context, continuations)`` becomes one sequence: the context's tokens, then every
continuation's tokens (minus its last) with position ids that restart after the context and
an attention mask that lets each continuation see the context and itself only. The numbers
equal scoring each pair alone (same tokens, same positions, same visible keys; tested against
lm-evaluation-harness); groups that would exceed the model's length are scored pair by pair.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import torch

from pytest_forgetting.backends.contract import Loglikelihood
from pytest_forgetting.backends.hf.batching import map_batched

if TYPE_CHECKING:
    from pytest_forgetting.backends.hf.backend import HFBackend


@torch.inference_mode()
def loglikelihood_groups(backend: "HFBackend", groups: Sequence[tuple[str, Sequence[str]]], *,
                         batch_size: Optional[int] = None) -> list[list[Loglikelihood]]:
    """Score several continuations of one context with the context computed once (see the module)."""
    packed, fallback = [], []
    for index, (context, continuations) in enumerate(groups):
        pairs = [backend.encode_pair(context, c) for c in continuations]
        context_ids = pairs[0][0]
        same_context = all(ctx == context_ids for ctx, _ in pairs)
        total = len(context_ids) + sum(len(cont) - 1 for _, cont in pairs)
        if same_context and all(pairs_cont for _, pairs_cont in pairs) and total <= backend.max_length:
            packed.append((index, context_ids, [cont for _, cont in pairs]))
        else:
            fallback.append(index)
    results: list[Optional[list[Loglikelihood]]] = [None] * len(groups)
    for index in fallback:
        context, continuations = groups[index]
        results[index] = backend.loglikelihood([(context, c) for c in continuations], batch_size=batch_size)

    def run(batch: list[tuple[int, list[int], list[list[int]]]]) -> list[list[Loglikelihood]]:
        layouts = [pack(context_ids, continuations) for _, context_ids, continuations in batch]
        longest = max(len(tokens) for tokens, _, _ in layouts)
        input_ids = torch.zeros((len(batch), longest), dtype=torch.long)
        positions = torch.zeros((len(batch), longest), dtype=torch.long)
        mask = torch.eye(longest, dtype=torch.bool).repeat(len(batch), 1, 1)  # padding sees itself
        for row, (tokens, position, visible) in enumerate(layouts):
            size = len(tokens)
            input_ids[row, :size] = torch.tensor(tokens)
            positions[row, :size] = torch.tensor(position)
            mask[row, :size, :size] = visible
        # the positions read: the context's last, then every continuation token but the last
        needed = [range(len(context_ids) - 1, len(tokens)) for (tokens, _, _), (_, context_ids, _)
                  in zip(layouts, batch)]
        logprobs = backend.logprobs_at(needed, input_ids=input_ids, position_ids=positions,
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
                                                          device=backend.device)):
        results[index] = scored
    return results  # type: ignore[return-value]


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
