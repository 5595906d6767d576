"""The transformers/peft backend: a :class:`ModelHandle` over a causal LM.

A base model and a PEFT adapter on it share one :class:`SharedModel`: the weights are in
memory once, and the base handle runs with the adapter disabled (peft's
``disable_adapter()``). Log-likelihoods follow lm-evaluation-harness exactly (see
``../shared/RESEARCH.md`` section 3): trailing whitespace of the context moves to the
continuation, the pair is tokenized jointly and split at the context's length, inputs are
right-padded without an attention mask (causal attention makes padding invisible), and the
score is the sum of the continuation tokens' ``log_softmax`` values.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from pytest_forgetting.backends.hf.batching import map_batched
from pytest_forgetting.backends.hf.greedy import greedy_continuations, shared_prefix_logits, supports_greedy_loop
from pytest_forgetting.backends.hf.greedy import truncate_prompts
from pytest_forgetting.backends.hf.greedy import takes_logits_to_keep as _takes_logits_to_keep
from pytest_forgetting.backends.contract import Loglikelihood

Prompt = Union[str, Sequence[int]]


class SharedModel:
    """One torch model in memory, possibly carrying a PEFT adapter that can be switched off."""

    def __init__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
        self.model = model
        self.device = device
        self.dtype = dtype
        self.has_adapter = False

    def attach_adapter(self, peft_model: torch.nn.Module) -> None:
        """Serve the tuned role from ``peft_model``, which wraps this model's weights."""
        self.model = peft_model
        self.has_adapter = True

    def running_as(self, role: str) -> contextlib.AbstractContextManager:
        """A context in which the model computes as ``role`` (adapter off for the base)."""
        if role == "base" and self.has_adapter:
            return self.model.disable_adapter()  # type: ignore[operator,union-attr]
        return contextlib.nullcontext()


#: A tokenizer's ``model_max_length`` when none was set (transformers' VERY_LARGE_INTEGER).
_TOKENIZER_UNSET = int(1e30)
DEFAULT_CONTEXT_LENGTH = 2048


def context_length(config: Any, tokenizer: Any = None, default: int = DEFAULT_CONTEXT_LENGTH) -> int:
    """The model's context length in tokens, resolved as lm-evaluation-harness resolves it.

    The text model's config (``text_config`` of a composite config, else the config):
    ``n_positions``, ``max_position_embeddings``, ``n_ctx``, the first one set; else the
    tokenizer's ``model_max_length`` when it is set; else ``default`` (lm-eval's
    ``resolve_max_length``, so truncation matches it).
    """
    text_config = getattr(config, "text_config", None) or config
    for attribute in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(text_config, attribute, None)
        if value is not None:
            return int(value)
    model_max_length = getattr(tokenizer, "model_max_length", None)
    if model_max_length is not None and int(model_max_length) != _TOKENIZER_UNSET:
        return int(model_max_length)
    return default


class HFModelHandle:
    """A base or tuned causal LM served from a :class:`SharedModel`.

    Args:
        shared: the model in memory.
        tokenizer: a transformers tokenizer.
        role: ``"base"`` or ``"tuned"``.
        name: display name.
        fingerprint: a function computing the fingerprint on first use.
        batch_size: fixed batch size, or None for automatic.
        add_special_tokens: let the tokenizer add its special tokens (its default, as lm-eval).
        source_path: the folder the model (or adapter) was loaded from.
    """

    def __init__(
        self,
        shared: SharedModel,
        tokenizer: object,
        *,
        role: str,
        name: str,
        fingerprint: Callable[[], str],
        batch_size: Optional[int] = None,
        add_special_tokens: bool = True,
        source_path: Optional[object] = None,
    ) -> None:
        self.shared = shared
        self.source_path = source_path
        self.tokenizer = tokenizer
        self.role = role
        self.name = name
        self._fingerprint_fn = fingerprint
        self._fingerprint: Optional[str] = None
        self.batch_size = batch_size
        self.add_special_tokens = add_special_tokens
        self._prefix_text: Optional[str] = None
        self.max_length = context_length(getattr(shared.model, "config", None), tokenizer)

    def __repr__(self) -> str:
        return f"<HFModelHandle {self.role} {self.name!r} on {self.device} {self.dtype}>"

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
    def prefix_token_id(self) -> int:
        """The token standing in for an empty context (BOS, else EOS), as lm-eval does."""
        tok = self.tokenizer
        bos = getattr(tok, "bos_token_id", None)
        return bos if bos is not None else tok.eos_token_id  # type: ignore[attr-defined]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as lm-eval's ``HFLM.tok_encode`` makes them.

        The tokenizer's own special-token default applies (e.g. a Llama tokenizer adds BOS),
        except when the text already starts with the prefix token's text (a chat-templated
        prompt), so that token is never doubled.
        """
        add = self.add_special_tokens
        if add:
            if self._prefix_text is None:
                self._prefix_text = self.tokenizer.decode([self.prefix_token_id])  # type: ignore[attr-defined]
            if self._prefix_text and text.startswith(self._prefix_text):
                add = False
        return list(self.tokenizer(text, add_special_tokens=add)["input_ids"])  # type: ignore[operator]

    # -- forward passes -------------------------------------------------------------------
    @torch.inference_mode()
    def logits(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Raw logits ``[batch, len, vocab]`` for ``input_ids``, computed as this handle's role."""
        with self.shared.running_as(self.role):
            output = self.shared.model(
                input_ids=input_ids.to(self.device),
                attention_mask=None if attention_mask is None else attention_mask.to(self.device),
            )
        return output.logits

    def _logprobs_at(self, rows: Sequence[Sequence[int]], **inputs: torch.Tensor) -> list[torch.Tensor]:
        """Float32 log-distributions at the given positions of each batch row: ``[len(rows[i]), vocab]``.

        The output head runs only on the positions some row needs (``logits_to_keep``, where
        the model takes it) and the softmax only on each row's own; the numbers are those of
        a full forward pass.
        """
        keep = sorted({p for positions in rows for p in positions})
        kwargs = {}
        if _takes_logits_to_keep(self.shared.model):
            kwargs["logits_to_keep"] = torch.tensor(keep, dtype=torch.long, device=self.device)
            column = {p: c for c, p in enumerate(keep)}
        else:
            column = {p: p for p in keep}
        with self.shared.running_as(self.role):
            logits = self.shared.model(**{k: v.to(self.device) for k, v in inputs.items()}, **kwargs).logits
        if logits.shape[1] != len(column):  # a model that took the argument but kept every position
            column = {p: p for p in keep}
        return [F.log_softmax(logits[row, [column[p] for p in positions]].float(), dim=-1)
                for row, positions in enumerate(rows)]

    def _right_padded(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        longest = max(len(seq) for seq in sequences)
        batch = torch.zeros((len(sequences), longest), dtype=torch.long)
        for row, seq in enumerate(sequences):
            batch[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        return batch

    def token_logprobs(
        self, sequences: Sequence[Sequence[int]], *, batch_size: Optional[int] = None
    ) -> Iterator[torch.Tensor]:
        """Per sequence, float32 next-token log-distributions ``[len, vocab]`` (on CPU)."""

        def run(batch: list[Sequence[int]]) -> list[torch.Tensor]:
            logprobs = F.log_softmax(self.logits(self._right_padded(batch)).float(), dim=-1)
            return [logprobs[row, : len(seq)].cpu() for row, seq in enumerate(batch)]

        lengths = [len(seq) for seq in sequences]
        yield from map_batched(
            list(sequences), lengths, run, batch_size=batch_size or self.batch_size, device=self.device
        )

    @torch.inference_mode()
    def continuation_logprobs(
        self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]], *,
        batch_size: Optional[int] = None,
    ) -> list[torch.Tensor]:
        """Per item, float32 log-distributions ``[len(continuation) + 1, vocab]`` (on CPU).

        Row ``j`` is the next-token distribution after the prompt and the first ``j``
        continuation tokens: from the prediction of the continuation's first token to the
        prediction after its last. Equal to slicing :meth:`token_logprobs` of
        ``prompt + continuation`` at ``len(prompt) - 1 :``, computed with the batch's shared
        prompt prefix run once and the output head only at those positions.
        """
        items = [(list(p), list(c)) for p, c in zip(prompts, continuations)]
        if any(not p for p, _ in items):
            raise ValueError("empty prompt: a continuation needs a prompt to follow")
        model = self.shared.model
        if not supports_greedy_loop(model):
            whole = self.token_logprobs([p + c for p, c in items], batch_size=batch_size)
            return [lp[len(p) - 1 :] for lp, (p, _) in zip(whole, items)]

        def run(batch: list[tuple[list[int], list[int]]]) -> list[torch.Tensor]:
            with self.shared.running_as(self.role):
                logits = shared_prefix_logits(self.shared.model, batch, device=self.device)
            return [F.log_softmax(logits[row, logits.shape[1] - len(c) - 1 :].float(), dim=-1).cpu()
                    for row, (_, c) in enumerate(batch)]

        lengths = [len(p) + len(c) for p, c in items]
        return map_batched(items, lengths, run, batch_size=batch_size or self.batch_size, device=self.device)

    # -- lm-eval log-likelihood -----------------------------------------------------------
    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's split: move trailing spaces, encode jointly, cut at the context length."""
        if context == "":
            # the prefix token is the context; a BOS the tokenizer adds is not scored (lm-eval)
            return [self.prefix_token_id], _without_prefix(self.encode(continuation), self.prefix_token_id)
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        context_ids = self.encode(context)
        return context_ids, whole[len(context_ids) :]

    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], *, batch_size: Optional[int] = None
    ) -> list[Loglikelihood]:
        """Score ``(context, continuation)`` pairs exactly as lm-evaluation-harness does."""
        encoded = [self.encode_pair(context, continuation) for context, continuation in requests]
        return self.loglikelihood_tokens(encoded, batch_size=batch_size)

    @torch.inference_mode()
    def loglikelihood_tokens(
        self, encoded: Sequence[tuple[Sequence[int], Sequence[int]]], *, batch_size: Optional[int] = None
    ) -> list[Loglikelihood]:
        """Score pre-tokenized ``(context_ids, continuation_ids)`` pairs."""
        inputs = []
        for context_ids, continuation_ids in encoded:
            if not continuation_ids:
                raise ValueError("empty continuation: nothing to score")
            whole = (list(context_ids) + list(continuation_ids))[-(self.max_length + 1) :]
            inputs.append((whole[:-1], list(continuation_ids)))

        def run(batch: list[tuple[list[int], list[int]]]) -> list[Loglikelihood]:
            spans = self._logprobs_at([range(len(inp) - len(cont), len(inp)) for inp, cont in batch],
                                      input_ids=self._right_padded([inp for inp, _ in batch]))
            results = []
            for span, (inp, continuation) in zip(spans, batch):
                target = torch.tensor(continuation, device=span.device).unsqueeze(-1)
                picked = torch.gather(span, 1, target).squeeze(-1)
                greedy = bool((span.argmax(dim=-1) == target.squeeze(-1)).all())
                results.append(Loglikelihood(float(picked.sum()), greedy, len(continuation)))
            return results

        lengths = [len(inp) for inp, _ in inputs]
        return map_batched(inputs, lengths, run, batch_size=batch_size or self.batch_size, device=self.device)

    # -- shared-prefix multiple choice ------------------------------------------------------
    @torch.inference_mode()
    def loglikelihood_grouped(
        self, groups: Sequence[tuple[str, Sequence[str]]], *, batch_size: Optional[int] = None
    ) -> list[list[Loglikelihood]]:
        """Score several continuations of one context with the context computed once.

        Each group ``(context, continuations)`` becomes one packed sequence: the context's
        tokens, then every continuation's tokens (minus its last) with position ids that
        restart after the context and an attention mask that lets each continuation see the
        context and itself only. The numbers equal :meth:`loglikelihood`'s (same tokens,
        same positions, same visible keys); groups that would exceed the model's length fall
        back to it.
        """
        packed, fallback = [], []
        for index, (context, continuations) in enumerate(groups):
            pairs = [self.encode_pair(context, c) for c in continuations]
            context_ids = pairs[0][0]
            same_context = all(ctx == context_ids for ctx, _ in pairs)
            total = len(context_ids) + sum(len(cont) - 1 for _, cont in pairs)
            if same_context and all(pairs_cont for _, pairs_cont in pairs) and total <= self.max_length:
                packed.append((index, context_ids, [cont for _, cont in pairs]))
            else:
                fallback.append(index)
        results: list[Optional[list[Loglikelihood]]] = [None] * len(groups)
        for index in fallback:
            context, continuations = groups[index]
            results[index] = self.loglikelihood([(context, c) for c in continuations], batch_size=batch_size)

        def run(batch: list[tuple[int, list[int], list[list[int]]]]) -> list[list[Loglikelihood]]:
            layouts = [_pack(context_ids, continuations) for _, context_ids, continuations in batch]
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
            logprobs = self._logprobs_at(needed, input_ids=input_ids, position_ids=positions,
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
                                                              batch_size=batch_size or self.batch_size,
                                                              device=self.device)):
            results[index] = scored
        return results  # type: ignore[return-value]

    # -- generation -----------------------------------------------------------------------
    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        batch_size: Optional[int] = None,
    ) -> list[str]:
        """Greedy decoding; each output is cut at its first stop string.

        Decoding runs in :func:`~pytest_forgetting.backends.hf.greedy.greedy_continuations` (a
        batch's shared prompt prefix computed once, finished rows leaving the batch); a model
        whose forward it cannot drive falls back to ``model.generate(do_sample=False)``.

        A prompt is text (encoded with this handle's settings) or a list of token ids (e.g.
        a chat-templated prompt that already holds its special tokens).

        A prompt longer than ``max_length - max_new_tokens`` tokens keeps its last that many
        (lm-eval's ``generate_until``); ``max_new_tokens >= max_length`` fails with one line.
        """
        encoded = truncate_prompts([self.encode(p) if isinstance(p, str) else list(p) for p in prompts],
                                   self.max_length, max_new_tokens)
        tok = self.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id  # type: ignore[attr-defined]

        model = self.shared.model
        if supports_greedy_loop(model):
            eos = _eos_token_ids(model, tok)
            stops = [s for s in stop if s]
            finished = None
            if stops:
                def finished(ids: list[int]) -> bool:
                    text = tok.decode(ids, skip_special_tokens=True)  # type: ignore[attr-defined]
                    return any(s in text for s in stops)

            def run(batch: list[list[int]]) -> list[str]:
                with self.shared.running_as(self.role):
                    continuations = greedy_continuations(
                        self.shared.model, batch, max_new_tokens=max_new_tokens, eos_token_ids=eos,
                        pad_token_id=pad_id, device=self.device, finished=finished,
                        max_length=self.max_length,
                    )
                texts = tok.batch_decode(continuations, skip_special_tokens=True)  # type: ignore[attr-defined]
                return [cut_at_stop(text, stop) for text in texts]
        else:
            run = self._generate_with_transformers(tok, pad_id, max_new_tokens, stop)

        lengths = [len(seq) + max_new_tokens for seq in encoded]
        return map_batched(encoded, lengths, run, batch_size=batch_size or self.batch_size, device=self.device)

    def _generate_with_transformers(self, tok: Any, pad_id: int, max_new_tokens: int,
                                    stop: Sequence[str]) -> Callable[[list[list[int]]], list[str]]:
        """Batch runner using ``model.generate`` (models the greedy loop cannot drive)."""

        def run(batch: list[list[int]]) -> list[str]:
            batch = truncate_prompts(batch, self.max_length, max_new_tokens)  # prompt + answer fit
            longest = max(len(seq) for seq in batch)
            input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), longest), dtype=torch.long)
            for row, seq in enumerate(batch):
                input_ids[row, longest - len(seq) :] = torch.tensor(seq, dtype=torch.long)
                mask[row, longest - len(seq) :] = 1
            extra = {"stop_strings": list(stop), "tokenizer": tok} if stop else {}
            with self.shared.running_as(self.role):
                output = self.shared.model.generate(  # type: ignore[operator]
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=pad_id,
                    **extra,
                )
            texts = tok.batch_decode(output[:, longest:], skip_special_tokens=True)  # type: ignore[attr-defined]
            return [cut_at_stop(text, stop) for text in texts]

        return run


def _eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """The tokens that end generation: the generation config's EOS (one or several), else the tokenizer's."""
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None) if config is not None else None
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return []
    return [int(t) for t in eos] if isinstance(eos, (list, tuple)) else [int(eos)]


def _without_prefix(ids: list[int], prefix: int) -> list[int]:
    """``ids`` without a leading ``prefix`` token (one a BOS-adding tokenizer put there)."""
    return ids[1:] if ids and ids[0] == prefix else ids


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for marker in stop:
        if marker:
            found = text.find(marker)
            if found != -1:
                cut = min(cut, found)
    return text[:cut]


def chat_prompt(tokenizer: object, prompt: str, system: Optional[str] = None) -> str:
    """``prompt`` wrapped in the tokenizer's chat template, ready for the assistant's reply."""
    if not getattr(tokenizer, "chat_template", None):
        from pytest_forgetting.errors import ForgettingError

        raise ForgettingError(
            "chat_template=True but the tokenizer has no chat template; load the suite with "
            "chat_template=False or use a tokenizer that ships one"
        )
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)  # type: ignore[attr-defined,no-any-return]


def _pack(context_ids: Sequence[int], continuations: Sequence[Sequence[int]]) -> tuple[list[int], list[int], torch.Tensor]:
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
