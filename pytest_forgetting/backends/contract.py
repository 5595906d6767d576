"""The backend contract: what a model declares it can do, and the methods the engine calls.

A backend is a subclass of :class:`Backend`. It states its :class:`Capabilities` and an
:meth:`Backend.identity` the result cache keys on, and implements the methods of the
capabilities it declares. The engine checks a suite's needs against the declaration
before scoring (:mod:`pytest_forgetting.engine.requirements`) and calls nothing else: no
attribute probing. A method of an undeclared capability raises :class:`Unsupported`.

The transformers/peft backend (:class:`pytest_forgetting.backends.hf.backend.HFBackend`)
implements the whole contract; a plugin provides others through the
``pytest_forgetting_load_model`` hook, or a script hands one to
:class:`~pytest_forgetting.engine.session.EvaluationSession` directly.

Token-level methods take and return token ids of the backend's own tokenizer; base and
candidates are compared position by position, so they must share a vocabulary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from pytest_forgetting.errors import ForgettingError

if TYPE_CHECKING:
    import torch

#: A chat conversation: ``[{"role": "system" | "user" | "assistant", "content": str}, ...]``.
Messages = Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the engine uses exactly what is declared here.

    Attributes:
        loglikelihood: log-likelihood of continuations given a context, teacher forced
            (:meth:`Backend.loglikelihood`, :meth:`Backend.loglikelihood_groups`,
            :meth:`Backend.loglikelihood_rolling`): multiple choice and perplexity.
        generate_text: greedy generation from text prompts (:meth:`Backend.generate`).
        generate_chat: greedy generation from chat messages (:meth:`Backend.generate_chat`).
        distributions: full next-token distributions (:meth:`Backend.token_distributions`,
            :meth:`Backend.continuation_distributions`): exact KL drift.
        top_logprobs: the largest ``k`` for which :meth:`Backend.continuation_top_logprobs`
            and :meth:`Backend.token_top_logprobs` return the top-k log-probabilities per
            position (0: none); KL drift from them is a declared approximation.
        tokenizer: token access (:meth:`Backend.encode`, :meth:`Backend.decode`,
            :meth:`Backend.chat_text`, :meth:`Backend.vocabulary`, :attr:`Backend.max_length`,
            :attr:`Backend.prefix_token_id`): chat templates for log-likelihood suites, drift.
    """

    loglikelihood: bool = False
    generate_text: bool = False
    generate_chat: bool = False
    distributions: bool = False
    top_logprobs: int = 0
    tokenizer: bool = False

    def names(self) -> list[str]:
        """The declared capabilities by name (``top_logprobs=20`` for top-k)."""
        declared = []
        for field in fields(self):
            value = getattr(self, field.name)
            if value is True:
                declared.append(field.name)
            elif value and not isinstance(value, bool):
                declared.append(f"{field.name}={value}")
        return declared

    def __str__(self) -> str:
        return ", ".join(self.names()) or "nothing"


@dataclass(frozen=True)
class Identity:
    """What the result cache keys a model's scores on.

    Attributes:
        fingerprint: a stable identity of everything that defines the outputs (weights,
            config, tokenizer; for a served model its id and the server's fingerprint).
        dtype: the compute precision (``"torch.float32"``), or what the server reports.
        device: the device type (``"cpu"``, ``"cuda"``) or ``"remote"``.
    """

    fingerprint: str
    dtype: str
    device: str

    def as_tuple(self) -> tuple[str, str, str]:
        """``(fingerprint, dtype, device)``."""
        return (self.fingerprint, self.dtype, self.device)


@dataclass(frozen=True)
class Loglikelihood:
    """Log-likelihood of one continuation given its context (teacher forced).

    Attributes:
        logprob: sum of the continuation tokens' log-probabilities.
        is_greedy: every continuation token is the model's argmax at its position.
        n_tokens: number of continuation tokens scored.
    """

    logprob: float
    is_greedy: bool
    n_tokens: int


@dataclass(frozen=True)
class TopLogprobs:
    """The top-k next-token log-probabilities at each of a sequence's positions.

    Attributes:
        ids: ``[positions, k]`` token ids, most likely first.
        logprobs: ``[positions, k]`` their log-probabilities.
    """

    ids: "torch.Tensor"
    logprobs: "torch.Tensor"


class VocabularySample(dict):  # type: ignore[type-arg]
    """Part of a vocabulary (token string -> id): what a backend that cannot list its whole
    vocabulary (a served model) knows of it, e.g. the tokens of a probe text."""


def check_same_vocabulary(base: Mapping[str, int], candidate: Mapping[str, int], name: str) -> None:
    """Paired scores need one tokenizer: fail with one line if the vocabularies differ.

    A :class:`VocabularySample` is compared on what it holds: each of its tokens must have
    the same id in the other vocabulary (and two samples must be equal).
    """
    if isinstance(base, VocabularySample) or isinstance(candidate, VocabularySample):
        sample, other = (candidate, base) if isinstance(candidate, VocabularySample) else (base, candidate)
        if isinstance(other, VocabularySample):  # two probes of the same text: they must be equal
            differing = sorted(set(sample.items()) ^ set(other.items()))
        else:
            differing = sorted((token, id_) for token, id_ in sample.items() if other.get(token) != id_)
        if differing:
            example = ", ".join(repr(token) for token, _ in differing[:3])
            raise ForgettingError(
                f"{name}: the tuned model's tokenizer splits text differently from the base's ({len(differing)} of "
                f"{len(sample)} probe tokens differ, e.g. {example}); paired token-level scoring needs one tokenizer: "
                "give both models the same tokenizer"
            )
        return
    if base == candidate:
        return
    differing = sorted(set(base.items()) ^ set(candidate.items()))
    example = ", ".join(repr(token) for token, _ in differing[:3])
    raise ForgettingError(
        f"{name}: the tuned model's tokenizer differs from the base's ({len(base)} vs "
        f"{len(candidate)} tokens; {len(differing)} entries differ, e.g. {example}); paired "
        "scoring needs the same vocabulary: save the base tokenizer with the tuned model"
    )


class Unsupported(NotImplementedError):
    """A backend was asked for something its :class:`Capabilities` do not declare."""


class Backend(ABC):
    """A loaded model the engine can score. Subclass it and declare :attr:`capabilities`.

    Every scoring method is batched; ``batch_size=None`` means the backend's own setting.
    Results never depend on the batch size beyond floating-point noise.
    """

    #: Display name: the path, model id or URL the user gave.
    name: str = ""
    #: What this backend can do (the engine checks it before scoring).
    capabilities: Capabilities = Capabilities()
    #: Whether the loader honours ``LoadOptions.device_map`` (sharding one model over devices);
    #: a session refuses a device map for a backend that does not.
    shards_by_device_map: bool = False

    @abstractmethod
    def identity(self) -> Identity:
        """What the result cache keys this model's scores on (see :class:`Identity`)."""

    # -- log-likelihood ---------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[tuple[str, str]], *, batch_size: int | None = None
                      ) -> list[Loglikelihood]:
        """Score each ``(context, continuation)`` pair with lm-evaluation-harness semantics."""
        raise self._unsupported("loglikelihood")

    def loglikelihood_groups(self, groups: Sequence[tuple[str, Sequence[str]]], *,
                             batch_size: int | None = None) -> list[list[Loglikelihood]]:
        """Several continuations of one context each (multiple choice), in order.

        The default scores every pair with :meth:`loglikelihood`; a backend may compute each
        context once for all its continuations, with the same numbers.
        """
        flat = [(context, continuation) for context, continuations in groups for continuation in continuations]
        scored = iter(self.loglikelihood(flat, batch_size=batch_size))
        return [[next(scored) for _ in continuations] for _, continuations in groups]

    def loglikelihood_rolling(self, texts: Sequence[str], *, batch_size: int | None = None
                              ) -> list[Loglikelihood]:
        """Log-likelihood of each whole text (every token scored once; lm-eval's rolling windows)."""
        raise self._unsupported("loglikelihood")

    # -- generation -------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 64, stop: Sequence[str] = (),
                 batch_size: int | None = None) -> list[str]:
        """Greedy continuations of text ``prompts``, each cut at its first stop string."""
        raise self._unsupported("generate_text")

    def generate_chat(self, conversations: Sequence[Messages], *, max_new_tokens: int = 64,
                      stop: Sequence[str] = (), batch_size: int | None = None) -> list[str]:
        """Greedy replies of the assistant to each conversation, cut at the first stop string."""
        raise self._unsupported("generate_chat")

    # -- distributions ----------------------------------------------------------------------
    def token_distributions(self, sequences: Sequence[Sequence[int]], *, batch_size: int | None = None
                            ) -> Iterator["torch.Tensor"]:
        """Per token-id sequence, float32 next-token log-distributions ``[len, vocab]``.

        Position ``t`` holds ``log p(. | tokens[: t + 1])``.
        """
        raise self._unsupported("distributions")

    def continuation_distributions(self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
                                   *, batch_size: int | None = None) -> list["torch.Tensor"]:
        """Per item, log-distributions ``[len(continuation) + 1, vocab]`` after the prompt.

        Row ``j`` is the distribution after the prompt and the continuation's first ``j``
        tokens. The default slices :meth:`token_distributions` of ``prompt + continuation``.
        """
        whole = self.token_distributions([list(p) + list(c) for p, c in zip(prompts, continuations)],
                                         batch_size=batch_size)
        return [lp[len(p) - 1 :] for lp, p in zip(whole, prompts)]

    def token_top_logprobs(self, sequences: Sequence[Sequence[int]], k: int, *, batch_size: int | None = None
                           ) -> list[TopLogprobs]:
        """Per sequence, the top-``k`` log-probabilities at each position (as :meth:`token_distributions`).

        The default takes them from :meth:`token_distributions` when distributions are declared.
        """
        if not self.capabilities.distributions:
            raise self._unsupported("top_logprobs")
        tops = []
        for logprobs in self.token_distributions(sequences, batch_size=batch_size):
            values, ids = logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)
            tops.append(TopLogprobs(ids, values))
        return tops

    def continuation_top_logprobs(self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
                                  k: int, *, batch_size: int | None = None) -> list[TopLogprobs]:
        """Per item, the top-``k`` at the positions :meth:`continuation_distributions` covers."""
        whole = self.token_top_logprobs([list(p) + list(c) for p, c in zip(prompts, continuations)], k,
                                        batch_size=batch_size)
        return [TopLogprobs(top.ids[len(p) - 1 :], top.logprobs[len(p) - 1 :]) for top, p in zip(whole, prompts)]

    # -- tokenizer --------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        """The context length in tokens."""
        raise self._unsupported("tokenizer")

    @property
    def prefix_token_id(self) -> int:
        """The token standing in for an empty context (BOS, else EOS), as lm-eval uses it."""
        raise self._unsupported("tokenizer")

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (with the tokenizer's special-token default)."""
        raise self._unsupported("tokenizer")

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids as the tokenizer decodes them (special tokens shown)."""
        raise self._unsupported("tokenizer")

    def chat_text(self, messages: Messages) -> str:
        """``messages`` rendered with the chat template, ready for the assistant's reply."""
        raise self._unsupported("tokenizer")

    def vocabulary(self) -> Mapping[str, int]:
        """Token text -> id (paired scoring needs base and candidate to agree)."""
        raise self._unsupported("tokenizer")

    def _unsupported(self, capability: str) -> Unsupported:
        return Unsupported(f"{self.name or type(self).__name__}: this backend does not declare {capability!r} "
                           f"(it declares: {self.capabilities})")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def describe(value: Any) -> str:
    """A short name for an object a loader returned (for the error when it is not a backend)."""
    return f"{type(value).__module__}.{type(value).__qualname__}"
