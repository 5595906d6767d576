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

Servers without a ``/tokenize`` endpoint or without echoed prompt log-probabilities (llama.cpp's
server ignores ``echo``) do not declare ``loglikelihood``; multiple choice is then answered by
written letters (:mod:`pytest_forgetting.scoring.letters`).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any, Optional, Sequence

from pytest_forgetting.backends.contract import Loglikelihood
from pytest_forgetting.errors import ForgettingError


def server_root(base_url: str) -> str:
    """The server's root URL (vLLM serves ``/tokenize`` beside ``/v1``)."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


class PromptScorer:
    """Scores ``(context, continuation)`` pairs through one server's ``/tokenize`` and echoed log-probs."""

    #: Token ids kept per text (a multiple-choice context is split once for all its choices).
    MEMO_SIZE = 4096

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.max_length: Optional[int] = None
        self._memo: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    # -- tokenization ---------------------------------------------------------------------
    def tokenize(self, text: str, *, retried: bool = True) -> list[int]:
        """Token ids of ``text`` by the served model's tokenizer (its special-token default).

        ``retried=False`` (the capability probe) sends it once, outside the request counts.
        """
        address = self.backend.address
        body = json.dumps({"model": address.model, "prompt": text}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {address.api_key()}"}

        def send() -> Any:
            request = urllib.request.Request(f"{server_root(address.base_url)}/tokenize", data=body, headers=headers)
            with urllib.request.urlopen(request, timeout=self.backend.policy.timeout) as response:
                return json.loads(response.read())

        answer = self.backend.runner.call("/tokenize", send) if retried else send()
        if self.max_length is None and answer.get("max_model_len"):
            self.max_length = int(answer["max_model_len"])
        return [int(t) for t in answer["tokens"]]

    def split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's ``_encode_pair``: (context ids, continuation ids) of one request."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation, context = context[-spaces:] + continuation, context[:-spaces]
        if not context:
            raise ForgettingError(f"{self.backend.name}: an empty context is scored after the BOS token, whose id a "
                                  "served model does not report; give every item some context")
        whole = self.tokenize(context + continuation)
        context_ids = self._context_ids(context)
        return context_ids, whole[len(context_ids):]

    def _context_ids(self, context: str) -> list[int]:
        """:meth:`tokenize` of a context, asked of the server once while it is remembered."""
        with self._lock:
            known = self._memo.get(context)
        if known is None:
            known = self.tokenize(context)
            with self._lock:
                if len(self._memo) >= self.MEMO_SIZE:
                    self._memo.clear()
                self._memo[context] = known
        return known

    # -- scoring --------------------------------------------------------------------------
    def score(self, context_ids: Sequence[int], continuation_ids: Sequence[int]) -> Loglikelihood:
        """The continuation's summed log-probability given the context, and whether it is greedy."""
        whole = list(context_ids) + list(continuation_ids)
        if self.max_length is not None and len(whole) > self.max_length - 1:
            whole = whole[-(self.max_length - 1):]  # room for the one token the request generates
        n = len(continuation_ids)
        if n == 0:
            return Loglikelihood(0.0, True, 0)
        address = self.backend.address
        response = self.backend.runner.call("/v1/completions", lambda: self.backend.client.completions.create(
            model=address.model, prompt=whole, max_tokens=1, temperature=0, seed=0, echo=True, logprobs=1))
        logprobs = response.choices[0].logprobs
        token_logprobs = list(logprobs.token_logprobs or [])[: len(whole)]
        if len(token_logprobs) < len(whole):
            raise ForgettingError(f"{self.backend.name}: /v1/completions echoed {len(token_logprobs)} prompt "
                                  f"log-probabilities for {len(whole)} prompt tokens; the server does not echo prompts")
        top = list(logprobs.top_logprobs or [])[: len(whole)]
        scored = token_logprobs[-n:]
        greedy = all(_is_top(value, options) for value, options in zip(scored, top[-n:]))
        return Loglikelihood(float(sum(scored)), greedy, n)


def _is_top(value: float, options: Optional[dict[str, float]]) -> bool:
    """Whether the chosen token's log-prob is the largest at its position (ties count as greedy)."""
    return not options or value >= max(options.values()) - 1e-6


def echoes_prompts(backend: Any) -> bool:
    """Whether the server tokenizes (``/tokenize``) and echoes prompt log-probabilities (a two-token probe)."""
    scorer = PromptScorer(backend)
    try:
        ids = scorer.tokenize("Hello world", retried=False)
    except (ForgettingError, urllib.error.URLError, OSError, KeyError, ValueError, TypeError):
        return False
    try:
        response = backend.client.completions.create(model=backend.address.model, prompt=ids, max_tokens=1,
                                                     temperature=0, seed=0, echo=True, logprobs=1)
    except Exception:
        return False
    logprobs = getattr(response.choices[0], "logprobs", None)
    echoed = list(getattr(logprobs, "token_logprobs", None) or [])
    return len(echoed) >= len(ids) and all(v is not None for v in echoed[1: len(ids)])
