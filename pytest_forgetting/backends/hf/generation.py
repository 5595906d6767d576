"""Greedy generation for the transformers backend: the greedy loop, or ``model.generate`` as a fallback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

import torch

from pytest_forgetting.backends.hf.batching import map_batched
from pytest_forgetting.backends.hf.greedy import greedy_continuations, supports_greedy_loop, truncate_prompts
from pytest_forgetting.backends.hf.text import cut_at_stop, eos_token_ids

if TYPE_CHECKING:
    from pytest_forgetting.backends.hf.backend import HFBackend

Prompt = Union[str, Sequence[int]]


@torch.inference_mode()
def generate(backend: "HFBackend", prompts: Sequence[Prompt], *, max_new_tokens: int = 64,
             stop: Sequence[str] = (), batch_size: Optional[int] = None) -> list[str]:
    """Greedy decoding; each output is cut at its first stop string.

    Decoding runs in :func:`~pytest_forgetting.backends.hf.greedy.greedy_continuations` (a
    batch's shared prompt prefix computed once, or taken from the backend's prefix cache;
    finished rows leaving the batch); a model
    whose forward it cannot drive falls back to ``model.generate(do_sample=False)``.

    A prompt is text (encoded with the backend's settings) or a list of token ids (e.g. a
    chat-templated prompt that already holds its special tokens). A prompt longer than
    ``max_length - max_new_tokens`` tokens keeps its last that many (lm-eval's
    ``generate_until``); ``max_new_tokens >= max_length`` fails with one line.
    """
    encoded = truncate_prompts([backend.encode(p) if isinstance(p, str) else list(p) for p in prompts],
                               backend.max_length, max_new_tokens)
    tok = backend.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    shared = backend.shared
    if supports_greedy_loop(shared.model):
        eos = eos_token_ids(shared.model, tok)
        stops = [s for s in stop if s]
        finished = None
        if stops:
            def finished(ids: list[int]) -> bool:
                text = tok.decode(ids, skip_special_tokens=True)
                return any(s in text for s in stops)

        def run(batch: list[list[int]]) -> list[str]:
            with shared.running_as(backend.adapter):
                continuations = greedy_continuations(
                    shared.model, batch, max_new_tokens=max_new_tokens, eos_token_ids=eos,
                    pad_token_id=pad_id, device=backend.device, finished=finished,
                    max_length=backend.max_length, prefix_cache=backend.prefix_cache,
                    scope=backend.prefix_scope,
                )
            texts = tok.batch_decode(continuations, skip_special_tokens=True)
            return [cut_at_stop(text, stop) for text in texts]
    else:
        run = _with_transformers(backend, pad_id, max_new_tokens, stop)
    lengths = [len(seq) + max_new_tokens for seq in encoded]
    return map_batched(encoded, lengths, run, batch_size=batch_size or backend.batch_size, device=backend.device)


def _with_transformers(backend: "HFBackend", pad_id: int, max_new_tokens: int,
                       stop: Sequence[str]) -> Callable[[list[list[int]]], list[str]]:
    """Batch runner using ``model.generate`` (models the greedy loop cannot drive)."""
    tok: Any = backend.tokenizer
    shared = backend.shared

    def run(batch: list[list[int]]) -> list[str]:
        batch = truncate_prompts(batch, backend.max_length, max_new_tokens)  # prompt + answer fit
        longest = max(len(seq) for seq in batch)
        input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, seq in enumerate(batch):
            input_ids[row, longest - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, longest - len(seq) :] = 1
        extra = {"stop_strings": list(stop), "tokenizer": tok} if stop else {}
        with shared.running_as(backend.adapter):
            output = shared.model.generate(  # type: ignore[operator]
                input_ids=input_ids.to(backend.device), attention_mask=mask.to(backend.device),
                max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
                pad_token_id=pad_id, **extra,
            )
        texts = tok.batch_decode(output[:, longest:], skip_special_tokens=True)
        return [cut_at_stop(text, stop) for text in texts]

    return run
