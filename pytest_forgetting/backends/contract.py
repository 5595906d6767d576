"""The backend contract: what a loaded model must offer to be scored.

A backend is anything that implements :class:`ModelHandle`. The transformers/peft backend
(:class:`pytest_forgetting.backends.hf.backend.HFModelHandle`) is the default; a plugin can provide
another through the ``pytest_forgetting_load_model`` hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    import torch


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


@runtime_checkable
class ModelHandle(Protocol):
    """A loaded model that the plugin can score.

    Every method is batched; ``batch_size=None`` means the handle's own setting
    (automatic unless the user fixed one). Results never depend on the batch size
    beyond floating-point noise.
    """

    name: str
    """Display name (the path or model id the user gave)."""

    role: str
    """``"base"`` or ``"tuned"``."""

    @property
    def fingerprint(self) -> str:
        """A stable identity of the weights, config and tokenizer (hex string)."""

    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], *, batch_size: int | None = None
    ) -> list[Loglikelihood]:
        """Score each ``(context, continuation)`` pair with lm-evaluation-harness semantics."""

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        batch_size: int | None = None,
    ) -> list[str]:
        """Greedy continuations of ``prompts``, cut at the first stop string."""

    def token_logprobs(
        self, sequences: Sequence[Sequence[int]], *, batch_size: int | None = None
    ) -> Iterator["torch.Tensor"]:
        """For each token-id sequence, its next-token log-distributions, shape ``[len, vocab]``.

        Position ``t`` holds ``log p(. | tokens[: t + 1])``. Used for perplexity and drift.
        """
