"""Forgetting checks during training: :class:`ForgettingCallback` for transformers' ``Trainer`` (and TRL's
``SFTTrainer``), over the live model (:mod:`~pytest_forgetting.training.live`), with a forgetting curve
(:mod:`~pytest_forgetting.training.curve`) and hints from the run's settings (:mod:`~pytest_forgetting.training.hints`).

Importing this package is cheap; the callback (and transformers) load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ForgettingCallback"]


def __getattr__(name: str) -> Any:
    if name == "ForgettingCallback":
        from pytest_forgetting.training.callback import ForgettingCallback

        return ForgettingCallback
    raise AttributeError(f"module 'pytest_forgetting.training' has no attribute {name!r}")
