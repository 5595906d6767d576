"""lm-eval's model interface over any backend: the engine's outputs, lm-eval's prompts and metrics.

:class:`BackendLM` is a small ``lm_eval.api.model.LM``: lm-eval builds every request (prompt,
few-shot examples, chat template, continuation) and hands it here; the backend answers it
with the same code that scores our own suites, so base and tuned go through one path and
the transformers backend keeps its lm-eval parity (log-likelihoods within 1e-4 in float32,
identical greedy text). Requests that share a context (a multiple-choice document's
choices) are scored as one group, so the context is computed once.

Generation is greedy only; a request asking to sample is refused (a task that samples is
refused before, when it is loaded).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from lm_eval.api.model import LM

from pytest_forgetting.backends.contract import Backend
from pytest_forgetting.errors import ForgettingError

#: lm-eval's default ``max_gen_toks`` for ``generate_until`` (``HFLM``).
DEFAULT_MAX_GEN_TOKS = 256
#: Requests handed to the backend at once (progress is reported between chunks).
CHUNK = 256


class BackendLM(LM):
    """An lm-eval ``LM`` answering with one :class:`~pytest_forgetting.backends.contract.Backend`.

    Args:
        backend: the model.
        batch_size: passed to every backend call (None: the backend's own).
        advance: called with the number of documents answered (progress).
    """

    def __init__(self, backend: Backend, *, batch_size: Optional[int] = None,
                 advance: Callable[[int], None] = lambda n: None) -> None:
        super().__init__()
        self.backend = backend
        self.batch_size = batch_size
        self.advance = advance

    # -- log-likelihood ---------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """``(logprob, is_greedy)`` per ``(context, continuation)``; a context's continuations are one group."""
        groups: list[tuple[str, list[str]]] = []
        for request in requests:
            context, continuation = request.args
            if groups and groups[-1][0] == context:
                groups[-1][1].append(continuation)
            else:
                groups.append((context, [continuation]))
        answers: list[tuple[float, bool]] = []
        for start in range(0, len(groups), CHUNK):
            chunk = groups[start : start + CHUNK]
            for scored in self.backend.loglikelihood_groups(chunk, batch_size=self.batch_size):
                answers.extend((r.logprob, r.is_greedy) for r in scored)
            self.advance(len(chunk))  # a document's choices share its context: one group per document
        return answers

    def loglikelihood_rolling(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[float]:
        """The whole text's log-likelihood per request (every token once, lm-eval's rolling windows)."""
        texts = [request.args[0] for request in requests]
        answers: list[float] = []
        for start in range(0, len(texts), CHUNK):
            chunk = texts[start : start + CHUNK]
            answers.extend(r.logprob for r in self.backend.loglikelihood_rolling(chunk, batch_size=self.batch_size))
            self.advance(len(chunk))
        return answers

    # -- generation -------------------------------------------------------------------------
    def generate_until(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[str]:
        """Greedy continuations, cut at the request's ``until`` strings, at most ``max_gen_toks`` tokens."""
        settings = [_greedy_settings(request.args[1]) for request in requests]
        answers: list[Optional[str]] = [None] * len(requests)
        order: dict[tuple[int, tuple[str, ...]], list[int]] = {}
        for index, setting in enumerate(settings):
            order.setdefault(setting, []).append(index)
        for (max_tokens, until), indices in order.items():
            for start in range(0, len(indices), CHUNK):
                part = indices[start : start + CHUNK]
                outputs = self.backend.generate([requests[i].args[0] for i in part], max_new_tokens=max_tokens,
                                                stop=until, batch_size=self.batch_size)
                for i, output in zip(part, outputs):
                    answers[i] = output
                self.advance(len(part))
        return [answer or "" for answer in answers]

    # -- chat -------------------------------------------------------------------------------
    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The conversation in the backend's chat template, ready for the assistant's reply."""
        if not add_generation_prompt:
            raise ForgettingError("this lm-eval task prefills the assistant's reply (gen_prefix) under a chat "
                                  "template, which pytest-forgetting's backends do not offer; run it without "
                                  "apply_chat_template")
        return self.backend.chat_text(chat_history)

    @property
    def tokenizer_name(self) -> str:
        """The model's name (lm-eval keys chat-templated request caches on it; we use none)."""
        return self.backend.name.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> Optional[str]:
        """Not read: the backend applies its own template."""
        return None


def _greedy_settings(gen_kwargs: Any) -> tuple[int, tuple[str, ...]]:
    kwargs = dict(gen_kwargs or {})
    if kwargs.get("do_sample") or float(kwargs.get("temperature") or 0.0) > 0:
        raise ForgettingError(f"an lm-eval request asks to sample ({kwargs}); forgetting checks decode greedily")
    until = kwargs.get("until") or ()
    until = (until,) if isinstance(until, str) else tuple(until)
    return int(kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS)), until
