"""Text helpers of the transformers backend: chat templates, stop strings, end-of-sequence tokens."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from pytest_forgetting.errors import ForgettingError


def chat_text(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> str:
    """``messages`` wrapped in the tokenizer's chat template, ready for the assistant's reply."""
    if not getattr(tokenizer, "chat_template", None):
        raise ForgettingError(
            "chat_template=True but the tokenizer has no chat template; load the suite with "
            "chat_template=False or use a tokenizer that ships one"
        )
    return tokenizer.apply_chat_template(list(messages), tokenize=False,  # type: ignore[no-any-return]
                                         add_generation_prompt=True)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for marker in stop:
        if marker:
            found = text.find(marker)
            if found != -1:
                cut = min(cut, found)
    return text[:cut]


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """The tokens that end generation: the generation config's EOS (one or several), else the tokenizer's."""
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None) if config is not None else None
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return []
    return [int(t) for t in eos] if isinstance(eos, (list, tuple)) else [int(eos)]


def without_prefix(ids: list[int], prefix: int) -> list[int]:
    """``ids`` without a leading ``prefix`` token (one a BOS-adding tokenizer put there)."""
    return ids[1:] if ids and ids[0] == prefix else ids
