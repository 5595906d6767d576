"""The transformers/peft backend: the whole :class:`~pytest_forgetting.backends.contract.Backend` contract over a causal LM.

A base model and PEFT adapters on it share one :class:`SharedModel`: the weights are in
memory once, the base runs with the adapters disabled and each candidate adapter with only
itself active. Log-likelihoods follow lm-evaluation-harness exactly (see
``../shared/RESEARCH.md`` section 3): trailing whitespace of the context moves to the
continuation, the pair is tokenized jointly and split at the context's length, inputs are
right-padded without an attention mask (causal attention makes padding invisible), and the
score is the sum of the continuation tokens' ``log_softmax`` values.

The key/value cache of a token prefix that a call's prompts share (few-shot examples, a
system prompt) is computed once and kept in the backend's :attr:`HFBackend.prefix_cache`
for its later calls: generation, drift and multiple choice
(:mod:`~pytest_forgetting.backends.hf.prefix_cache`).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterator, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F

from pytest_forgetting.backends.contract import (
    Backend,
    Capabilities,
    Identity,
    Loglikelihood,
    Messages,
    TopLogprobs,
)
from pytest_forgetting.backends.hf import generation, packing
from pytest_forgetting.backends.hf.batching import map_batched
from pytest_forgetting.backends.hf.greedy import shared_prefix_logits, supports_greedy_loop
from pytest_forgetting.backends.hf.greedy import takes_logits_to_keep as _takes_logits_to_keep
from pytest_forgetting.backends.hf.kv import cache_argument
from pytest_forgetting.backends.hf.prefix_cache import PrefixCache
from pytest_forgetting.backends.hf.shared import SharedModel, context_length
from pytest_forgetting.backends.hf.text import chat_text, without_prefix
from pytest_forgetting.backends.windows import rolling_windows


class HFBackend(Backend):
    """The base model, or one candidate (checkpoint or adapter), served from a :class:`SharedModel`.

    Args:
        shared: the model in memory.
        tokenizer: a transformers tokenizer.
        adapter: the adapter this backend runs with, or None (the base: adapters disabled).
        name: display name.
        fingerprint: a function computing the fingerprint on first use.
        batch_size: fixed batch size, or None for automatic.
        add_special_tokens: let the tokenizer add its special tokens (its default, as lm-eval).
        source_path: the folder the model (or adapter) was loaded from.

    Attributes:
        prefix_cache: the KV caches of shared prompt prefixes kept across calls; set it to
            None to compute each batch's prefix afresh (generation, drift) and pack multiple
            choice without a prefix pass, as before the cache existed.
    """

    shards_by_device_map = True

    def __init__(
        self,
        shared: SharedModel,
        tokenizer: Any,
        *,
        adapter: Optional[str] = None,
        name: str,
        fingerprint: Callable[[], str],
        batch_size: Optional[int] = None,
        add_special_tokens: bool = True,
        source_path: Optional[object] = None,
    ) -> None:
        self.shared = shared
        self.tokenizer = tokenizer
        self.adapter = adapter
        self.name = name
        self.source_path = source_path
        self.batch_size = batch_size
        self.add_special_tokens = add_special_tokens
        self._fingerprint_fn = fingerprint
        self._fingerprint: Optional[str] = None
        self._prefix_text: Optional[str] = None
        self._max_length = context_length(getattr(shared.model, "config", None), tokenizer)
        self.prefix_cache: Optional[PrefixCache] = PrefixCache()
        self.capabilities = Capabilities(loglikelihood=True, generate_text=True, generate_chat=True,
                                         distributions=True, top_logprobs=len(tokenizer), tokenizer=True)

    def __repr__(self) -> str:
        return f"<HFBackend {self.name!r} adapter={self.adapter!r} on {self.device} {self.dtype}>"

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return self.shared.device

    @property
    def dtype(self) -> torch.dtype:
        """The model's compute dtype."""
        return self.shared.dtype

    @property
    def fingerprint(self) -> str:
        """Content hash of config, weights and tokenizer (computed once, on first use)."""
        if self._fingerprint is None:
            self._fingerprint = self._fingerprint_fn()
        return self._fingerprint

    @property
    def prefix_scope(self) -> Hashable:
        """What :attr:`prefix_cache` keys this model's prefixes by: adapter, dtype and device."""
        return (self.adapter, str(self.dtype), str(self.device))

    def identity(self) -> Identity:
        """The fingerprint, the dtype and the device type."""
        return Identity(self.fingerprint, str(self.dtype), self.device.type)

    # -- tokenizer ------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        """The context length, resolved as lm-eval resolves it (settable, e.g. to test truncation)."""
        return self._max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self._max_length = int(value)

    @property
    def prefix_token_id(self) -> int:
        """The token standing in for an empty context (BOS, else EOS), as lm-eval does."""
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return bos if bos is not None else self.tokenizer.eos_token_id  # type: ignore[no-any-return]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as lm-eval's ``HFLM.tok_encode`` makes them.

        The tokenizer's own special-token default applies (e.g. a Llama tokenizer adds BOS),
        except when the text already starts with the prefix token's text (a chat-templated
        prompt), so that token is never doubled.
        """
        add = self.add_special_tokens
        if add:
            if self._prefix_text is None:
                self._prefix_text = self.tokenizer.decode([self.prefix_token_id])
            if self._prefix_text and text.startswith(self._prefix_text):
                add = False
        return list(self.tokenizer(text, add_special_tokens=add)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` as the tokenizer decodes them (special tokens shown)."""
        return self.tokenizer.decode(list(ids))  # type: ignore[no-any-return]

    def chat_text(self, messages: Messages) -> str:
        """``messages`` in the tokenizer's chat template, ready for the assistant's reply."""
        return chat_text(self.tokenizer, messages)

    def vocabulary(self) -> Mapping[str, int]:
        """The tokenizer's vocabulary."""
        return self.tokenizer.get_vocab()  # type: ignore[no-any-return]

    # -- forward passes -------------------------------------------------------------------
    @torch.inference_mode()
    def logits(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Raw logits ``[batch, len, vocab]`` for ``input_ids``, computed as this backend's model."""
        with self.shared.running_as(self.adapter):
            output = self.shared.model(
                input_ids=input_ids.to(self.device),
                attention_mask=None if attention_mask is None else attention_mask.to(self.device),
            )
        return output.logits

    def logprobs_at(self, rows: Sequence[Sequence[int]], *, cache: Any = None,
                    **inputs: torch.Tensor) -> list[torch.Tensor]:
        """Float32 log-distributions at the given positions of each batch row: ``[len(rows[i]), vocab]``.

        The output head runs only on the positions some row needs (``logits_to_keep``, where
        the model takes it) and the softmax only on each row's own; the numbers are those of
        a full forward pass. ``cache``: a KV cache of tokens before the inputs (a shared
        prefix; positions and mask then account for it).
        """
        keep = sorted({p for positions in rows for p in positions})
        kwargs: dict[str, Any] = {}
        if cache is not None:
            name = cache_argument(self.shared.model)
            assert name is not None, "a prefix cache needs a model whose forward takes a KV cache"
            kwargs.update({name: cache, "use_cache": True})
        if _takes_logits_to_keep(self.shared.model):
            kwargs["logits_to_keep"] = torch.tensor(keep, dtype=torch.long, device=self.device)
            column = {p: c for c, p in enumerate(keep)}
        else:
            column = {p: p for p in keep}
        with self.shared.running_as(self.adapter):
            logits = self.shared.model(**{k: v.to(self.device) for k, v in inputs.items()}, **kwargs).logits
        if logits.shape[1] != len(column):  # a model that took the argument but kept every position
            column = {p: p for p in keep}
        return [F.log_softmax(logits[row, [column[p] for p in positions]].float(), dim=-1)
                for row, positions in enumerate(rows)]

    @staticmethod
    def right_padded(sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """Token-id rows padded on the right with zeros (invisible to causal attention)."""
        longest = max(len(seq) for seq in sequences)
        batch = torch.zeros((len(sequences), longest), dtype=torch.long)
        for row, seq in enumerate(sequences):
            batch[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        return batch

    def token_distributions(self, sequences: Sequence[Sequence[int]], *, batch_size: Optional[int] = None
                            ) -> Iterator[torch.Tensor]:
        """Per sequence, float32 next-token log-distributions ``[len, vocab]`` (on CPU)."""

        def run(batch: list[Sequence[int]]) -> list[torch.Tensor]:
            logprobs = F.log_softmax(self.logits(self.right_padded(batch)).float(), dim=-1)
            return [logprobs[row, : len(seq)].cpu() for row, seq in enumerate(batch)]

        lengths = [len(seq) for seq in sequences]
        yield from map_batched(list(sequences), lengths, run, batch_size=batch_size or self.batch_size,
                               device=self.device)

    @torch.inference_mode()
    def continuation_distributions(self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
                                   *, batch_size: Optional[int] = None) -> list[torch.Tensor]:
        """Per item, float32 log-distributions ``[len(continuation) + 1, vocab]`` (on CPU).

        Equal to slicing :meth:`token_distributions` of ``prompt + continuation`` at
        ``len(prompt) - 1 :``, computed with the batch's shared prompt prefix run once and the
        output head only at those positions.
        """
        items = [(list(p), list(c)) for p, c in zip(prompts, continuations)]
        if any(not p for p, _ in items):
            raise ValueError("empty prompt: a continuation needs a prompt to follow")
        if not supports_greedy_loop(self.shared.model):
            return super().continuation_distributions(prompts, continuations, batch_size=batch_size)

        def run(batch: list[tuple[list[int], list[int]]]) -> list[torch.Tensor]:
            with self.shared.running_as(self.adapter):
                logits = shared_prefix_logits(self.shared.model, batch, device=self.device,
                                              prefix_cache=self.prefix_cache, scope=self.prefix_scope)
            return [F.log_softmax(logits[row, logits.shape[1] - len(c) - 1 :].float(), dim=-1).cpu()
                    for row, (_, c) in enumerate(batch)]

        lengths = [len(p) + len(c) for p, c in items]
        return map_batched(items, lengths, run, batch_size=batch_size or self.batch_size, device=self.device)

    def token_top_logprobs(self, sequences: Sequence[Sequence[int]], k: int, *, batch_size: Optional[int] = None
                           ) -> list[TopLogprobs]:
        """The top-``k`` of :meth:`token_distributions` at every position."""
        return [_top(lp, k) for lp in self.token_distributions(sequences, batch_size=batch_size)]

    def continuation_top_logprobs(self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
                                  k: int, *, batch_size: Optional[int] = None) -> list[TopLogprobs]:
        """The top-``k`` of :meth:`continuation_distributions`."""
        return [_top(lp, k) for lp in self.continuation_distributions(prompts, continuations, batch_size=batch_size)]

    # -- lm-eval log-likelihood -----------------------------------------------------------
    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's split: move trailing spaces, encode jointly, cut at the context length."""
        if context == "":
            # the prefix token is the context; a BOS the tokenizer adds is not scored (lm-eval)
            return [self.prefix_token_id], without_prefix(self.encode(continuation), self.prefix_token_id)
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        context_ids = self.encode(context)
        return context_ids, whole[len(context_ids) :]

    def loglikelihood(self, requests: Sequence[tuple[str, str]], *, batch_size: Optional[int] = None
                      ) -> list[Loglikelihood]:
        """Score ``(context, continuation)`` pairs exactly as lm-evaluation-harness does."""
        encoded = [self.encode_pair(context, continuation) for context, continuation in requests]
        return self.loglikelihood_tokens(encoded, batch_size=batch_size)

    @torch.inference_mode()
    def loglikelihood_tokens(self, encoded: Sequence[tuple[Sequence[int], Sequence[int]]], *,
                             batch_size: Optional[int] = None) -> list[Loglikelihood]:
        """Score pre-tokenized ``(context_ids, continuation_ids)`` pairs."""
        inputs = []
        for context_ids, continuation_ids in encoded:
            if not continuation_ids:
                raise ValueError("empty continuation: nothing to score")
            whole = (list(context_ids) + list(continuation_ids))[-(self.max_length + 1) :]
            inputs.append((whole[:-1], list(continuation_ids)))

        def run(batch: list[tuple[list[int], list[int]]]) -> list[Loglikelihood]:
            spans = self.logprobs_at([range(len(inp) - len(cont), len(inp)) for inp, cont in batch],
                                     input_ids=self.right_padded([inp for inp, _ in batch]))
            results = []
            for span, (inp, continuation) in zip(spans, batch):
                target = torch.tensor(continuation, device=span.device).unsqueeze(-1)
                picked = torch.gather(span, 1, target).squeeze(-1)
                greedy = bool((span.argmax(dim=-1) == target.squeeze(-1)).all())
                results.append(Loglikelihood(float(picked.sum()), greedy, len(continuation)))
            return results

        lengths = [len(inp) for inp, _ in inputs]
        return map_batched(inputs, lengths, run, batch_size=batch_size or self.batch_size, device=self.device,
                           bound_padding=True)

    def loglikelihood_groups(self, groups: Sequence[tuple[str, Sequence[str]]], *,
                             batch_size: Optional[int] = None) -> list[list[Loglikelihood]]:
        """Each context computed once for all its continuations (:mod:`~pytest_forgetting.backends.hf.packing`).

        A token prefix the contexts share (few-shot examples) runs once, or comes from
        :attr:`prefix_cache`.
        """
        return packing.loglikelihood_groups(self, groups, batch_size=batch_size)

    @torch.inference_mode()
    def loglikelihood_rolling(self, texts: Sequence[str], *, batch_size: Optional[int] = None
                              ) -> list[Loglikelihood]:
        """Each text's total log-likelihood over rolling windows of the context length.

        The text's first token is predicted from the prefix token (BOS or EOS), as lm-eval's
        ``loglikelihood_rolling`` does; ``is_greedy`` is not computed (False).
        """
        prefix = self.prefix_token_id
        windows, owners = [], []
        for index, text in enumerate(texts):
            tokens = without_prefix(self.encode(text), prefix)  # the windows add the prefix once
            for window in rolling_windows(tokens, prefix, self.max_length):
                windows.append(window)
                owners.append(index)
        totals = [0.0] * len(texts)
        counts = [0] * len(texts)
        distributions = self.token_distributions([ids[:-1] for ids, _ in windows], batch_size=batch_size)
        for (ids, predicted), owner, logprobs in zip(windows, owners, distributions):
            targets = ids[len(ids) - predicted :]
            rows = logprobs[len(ids) - 1 - predicted :]
            totals[owner] += float(sum(float(rows[i, t]) for i, t in enumerate(targets)))
            counts[owner] += predicted
        return [Loglikelihood(total, False, count) for total, count in zip(totals, counts)]

    # -- generation -----------------------------------------------------------------------
    def generate(self, prompts: Sequence[Any], *, max_new_tokens: int = 64, stop: Sequence[str] = (),
                 batch_size: Optional[int] = None) -> list[str]:
        """Greedy decoding of text (or token-id) prompts (:func:`~pytest_forgetting.backends.hf.generation.generate`)."""
        return generation.generate(self, prompts, max_new_tokens=max_new_tokens, stop=stop, batch_size=batch_size)

    def generate_chat(self, conversations: Sequence[Messages], *, max_new_tokens: int = 64,
                      stop: Sequence[str] = (), batch_size: Optional[int] = None) -> list[str]:
        """Greedy replies: each conversation in the chat template, then :meth:`generate`."""
        return self.generate([self.chat_text(messages) for messages in conversations],
                             max_new_tokens=max_new_tokens, stop=stop, batch_size=batch_size)


def _top(logprobs: torch.Tensor, k: int) -> TopLogprobs:
    values, ids = logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)
    return TopLogprobs(ids, values)
