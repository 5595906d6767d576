"""Log-likelihoods from a server's prompt log-probabilities (vLLM), split as the local engine splits them.

The split of context and continuation decides which tokens are scored, so it must be the
one lm-eval (and so the local transformers backend) uses; here it is ensured by tokenizing
on the *server*, with the served model's own tokenizer, exactly as lm-eval's
``TemplateLM._encode_pair`` does: trailing whitespace of the context moves to the
continuation, ``whole = tokenize(context + continuation)``, ``context = tokenize(context)``,
and the continuation is ``whole[len(context):]``. The token ids of ``whole`` are then sent as
the prompt of ``/v1/completions`` with ``echo``, ``logprobs=1`` and ``max_tokens=1``; the
continuation's log-likelihood is the sum of the echoed log-probabilities of its tokens, and
it is greedy when each of them is the most likely token at its position. A prompt longer
than the model's context keeps its last tokens (lm-eval's left truncation).

The same echo with ``logprobs=k`` and ``return_tokens_as_token_ids`` gives the top-``k``
next-token log-probabilities at every position, keyed by token id (never by token text,
which two tokens can share): KL drift's declared top-k approximation.

Servers without a ``/tokenize`` endpoint or without echoed prompt log-probabilities (llama.cpp's
server ignores ``echo``) do not declare ``loglikelihood``; multiple choice is then answered by
written letters (:mod:`pytest_forgetting.scoring.letters`).
"""

from __future__ import annotations

import urllib.error
from typing import Any, Optional, Sequence

from pytest_forgetting.backends.contract import Loglikelihood, TopLogprobs
from pytest_forgetting.errors import ForgettingError

#: The top-k sizes a probe asks echoed log-probabilities for, largest first (vLLM allows
#: ``--max-logprobs``, 20 by default; OpenAI's legacy completions allowed 5).
PROBED_TOP_K = (20, 5, 1)


class PromptScorer:
    """Scores token ids through one server's echoed prompt log-probabilities (``/v1/completions``)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.tokens = backend.tokens

    @property
    def max_length(self) -> Optional[int]:
        """The longest prompt an echo request takes (the server's context, less the token it writes)."""
        known = self.tokens.max_model_len
        return None if known is None else known - 1

    def split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's ``_encode_pair``: (context ids, continuation ids) of one request."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation, context = context[-spaces:] + continuation, context[:-spaces]
        if not context:
            raise ForgettingError(f"{self.backend.name}: an empty context is scored after the BOS token, whose id a "
                                  "served model does not report; give every item some context")
        whole = self.tokens.tokenize(context + continuation)
        context_ids = self.tokens.tokenize(context)
        return context_ids, whole[len(context_ids):]

    def echo(self, ids: Sequence[int], k: int) -> Any:
        """The echoed log-probabilities of ``ids`` (top ``k`` per position, keyed ``token_id:N``) and of one
        written token."""
        address = self.backend.address
        response = self.backend.runner.call("/v1/completions", lambda: self.backend.client.completions.create(
            model=address.model, prompt=list(ids), max_tokens=1, temperature=0, seed=0, echo=True, logprobs=k,
            extra_body={"return_tokens_as_token_ids": True}))
        logprobs = response.choices[0].logprobs
        if len(list(logprobs.token_logprobs or [])) < len(ids):
            raise ForgettingError(f"{self.backend.name}: /v1/completions echoed {len(logprobs.token_logprobs or [])} "
                                  f"prompt log-probabilities for {len(ids)} prompt tokens; the server does not echo "
                                  "prompts")
        return logprobs

    # -- scoring --------------------------------------------------------------------------
    def score(self, context_ids: Sequence[int], continuation_ids: Sequence[int]) -> Loglikelihood:
        """The continuation's summed log-probability given the context, and whether it is greedy."""
        whole = list(context_ids) + list(continuation_ids)
        if self.max_length is not None and len(whole) > self.max_length:
            whole = whole[-self.max_length:]  # lm-eval's left truncation
        n = len(continuation_ids)
        if n == 0:
            return Loglikelihood(0.0, True, 0)
        logprobs = self.echo(whole, 1)
        scored = list(logprobs.token_logprobs)[len(whole) - n: len(whole)]
        top = list(logprobs.top_logprobs or [])[len(whole) - n: len(whole)]
        greedy = all(_is_top(value, options) for value, options in zip(scored, top))
        return Loglikelihood(float(sum(scored)), greedy, n)

    def top_logprobs(self, ids: Sequence[int], k: int) -> TopLogprobs:
        """Row ``t``: the top-``k`` next-token log-probabilities after ``ids[: t + 1]`` (as the contract's
        :meth:`~pytest_forgetting.backends.contract.Backend.token_top_logprobs`)."""
        import torch

        if not ids:
            raise ForgettingError(f"{self.backend.name}: top-k log-probabilities of an empty sequence")
        logprobs = self.echo(ids, k)
        # entry i predicts token i from the tokens before it; the last one is the written token's
        rows = list(logprobs.top_logprobs or [])[1: len(ids) + 1]
        if len(rows) < len(ids) or any(not row for row in rows):
            raise ForgettingError(f"{self.backend.name}: /v1/completions returned no top-{k} log-probabilities for "
                                  "every position; the server does not offer them")
        best = [sorted(((_token_id(key), value) for key, value in row.items()), key=lambda kv: -kv[1])[:k]
                for row in rows]
        width = min(len(row) for row in best)
        return TopLogprobs(torch.tensor([[i for i, _ in row[:width]] for row in best], dtype=torch.long),
                           torch.tensor([[v for _, v in row[:width]] for row in best], dtype=torch.float32))


def _token_id(key: str) -> int:
    """The id in a ``token_id:N`` key (vLLM's ``return_tokens_as_token_ids``)."""
    if not key.startswith("token_id:"):
        raise ForgettingError(f"the server named a token {key!r} instead of its id (token_id:N); top-k "
                              "log-probabilities need a server that returns token ids (vLLM)")
    return int(key[len("token_id:"):])


def _is_top(value: float, options: Optional[dict[str, float]]) -> bool:
    """Whether the chosen token's log-prob is the largest at its position (ties count as greedy)."""
    return not options or value >= max(options.values()) - 1e-6


def probe_echo(backend: Any) -> int:
    """How many top log-probabilities per prompt token the server echoes with token ids (0: it tokenizes
    nothing through ``/tokenize`` or echoes no prompt log-probabilities): a two-token probe per size."""
    try:
        ids = backend.tokens.tokenize("Hello world", retried=False)
    except (ForgettingError, urllib.error.URLError, OSError, KeyError, ValueError, TypeError):
        return 0
    if len(ids) < 2:  # a server that answered /tokenize without tokenizing (another API)
        return 0
    for k in PROBED_TOP_K:
        try:
            response = backend.client.completions.create(
                model=backend.address.model, prompt=ids, max_tokens=1, temperature=0, seed=0, echo=True, logprobs=k,
                extra_body={"return_tokens_as_token_ids": True})
        except Exception:
            continue
        logprobs = getattr(response.choices[0], "logprobs", None)
        echoed = list(getattr(logprobs, "token_logprobs", None) or [])
        if len(echoed) < len(ids) or any(v is None for v in echoed[1: len(ids)]):
            return 0
        tops = list(getattr(logprobs, "top_logprobs", None) or [])
        named = len(tops) > 1 and tops[1] and all(str(key).startswith("token_id:") for key in tops[1])
        return k if named else 1
    return 0
