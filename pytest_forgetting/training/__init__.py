"""Forgetting checks during training: :class:`ForgettingCallback` for transformers' ``Trainer`` (and TRL's
``SFTTrainer``), over the live model (:mod:`~pytest_forgetting.training.live`), with a forgetting curve."""

from pytest_forgetting.training.callback import ForgettingCallback

__all__ = ["ForgettingCallback"]
