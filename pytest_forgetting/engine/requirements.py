"""What a suite needs from a backend, checked against its declared capabilities before scoring.

A backend that cannot serve a suite is refused with one line naming the model, the suite
kind and the missing capability, before any item is scored.
"""

from __future__ import annotations

from typing import Optional

from pytest_forgetting.backends.contract import Capabilities
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.scoring.suites import Suite

#: The most top-k log-probabilities drift asks a backend for (OpenAI-compatible servers allow 20).
MAX_TOP_LOGPROBS = 20


def needs(suite: Suite) -> list[str]:
    """The capabilities scoring ``suite`` calls on."""
    chat = suite.settings.chat_template
    if suite.kind == "lm_eval":
        types = set(getattr(suite.settings, "output_types", ()))
        wanted = (["loglikelihood"] if types - {"generate_until"} else []) + \
            (["generate_text"] if "generate_until" in types else [])
        return [*wanted, *(["tokenizer"] if chat else [])]
    if suite.kind == "generation" or suite.settings.answer_by == "letter":
        return ["generate_chat" if chat else "generate_text"]
    return ["loglikelihood", *(["tokenizer"] if chat else [])]


def _what(suite: Suite, purpose: str = "") -> str:
    chat = ", chat template" if suite.settings.chat_template else ""
    return f"suite {suite.name!r} ({suite.kind}{chat}{purpose})"


def check_scorable(model: str, capabilities: Capabilities, suite: Suite) -> None:
    """Fail with one line unless a backend declaring ``capabilities`` can score ``suite``."""
    missing = [name for name in needs(suite) if not getattr(capabilities, name)]
    if missing:
        raise ForgettingError(
            f"{model}: {_what(suite)} needs {' and '.join(missing)}, which its backend does not declare "
            f"(it declares: {capabilities}); use a backend that offers it, or leave this suite out for this model"
        )


def drift_mode(models: dict[str, Capabilities], suite: Suite, *, metric: str, top_k: int,
               generate: bool) -> Optional[int]:
    """How drift is measured for these models: None for exact KL, or the ``k`` of top-k log-probs.

    Both models need token access; exact KL needs full next-token distributions from both,
    else both must declare top-k log-probabilities (at least ``top_k`` for the shift rate);
    ``generate`` (the tuned model's answers are not at hand) needs the tuned model to generate.
    Otherwise fails with one line naming the model and what it lacks.
    """
    for model, capabilities in models.items():
        if not capabilities.tokenizer:
            raise ForgettingError(
                f"{model}: {_what(suite, ', KL drift')} needs tokenizer (token access), which its backend does "
                f"not declare (it declares: {capabilities})"
            )
    tuned = list(models.values())[-1]
    if generate:
        needed = "generate_chat" if suite.settings.chat_template else "generate_text"
        if not getattr(tuned, needed):
            raise ForgettingError(
                f"{list(models)[-1]}: {_what(suite, ', KL drift')} needs {needed} to write the answers drift is "
                f"measured on, which its backend does not declare (it declares: {tuned})"
            )
    if all(capabilities.distributions for capabilities in models.values()):
        return None
    least = 1 if metric == "kl" else top_k
    for model, capabilities in models.items():
        if not capabilities.distributions and capabilities.top_logprobs < least:
            wanted = "next-token distributions or top-k log-probs" if metric == "kl" else \
                f"next-token distributions or top-{top_k} log-probs (for the shift rate)"
            raise ForgettingError(
                f"{model}: {_what(suite, f', {metric} drift')} needs {wanted}, which its backend does not "
                f"declare (it declares: {capabilities}); drift cannot be measured for this model"
            )
    return min(MAX_TOP_LOGPROBS, *(c.top_logprobs if not c.distributions else MAX_TOP_LOGPROBS
                                   for c in models.values()))
