"""The model a training loop is changing, as backends: its base, and itself at a given step.

A PEFT model's base is the same weights with the adapter disabled (peft's
``disable_adapter()``), so it can be scored at any time; a full fine-tune's base is the model
before its first step, so it must be scored then. Either way the base's identity is a digest of
its weights in memory (adapter weights left out), so a base already scored in an earlier run
with the same weights comes from the result cache without scoring; each step's model is a new
candidate of its own (never cached: it is not seen again).

Scoring a live model must not change training: it runs in eval mode (dropout off) with
gradients off, and the caller restores train mode and every random number generator after
(:func:`training_state_kept`). The backends use a copy of the tokenizer (scoring sets a pad
token, which must not leak into the trainer's collator), and keep no KV caches across calls
(weights change between evaluations).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import uuid
from typing import Any, Iterator, Optional

import torch

from pytest_forgetting.backends.hf.backend import HFBackend
from pytest_forgetting.backends.hf.shared import SharedModel
from pytest_forgetting.errors import ForgettingError

#: Parameter names that belong to a PEFT adapter, not to its base.
ADAPTER_MARKERS = ("lora_", "modules_to_save", "prompt_encoder", "vera_", "ia3_")


def is_peft(model: Any) -> bool:
    """Whether ``model`` is a PEFT model (its base is the same weights with the adapter disabled)."""
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def weights_digest(model: torch.nn.Module, *, base_only: bool) -> str:
    """A content digest of the model's parameters and buffers (``base_only``: adapters left out)."""
    digest = hashlib.blake2b(digest_size=20)
    for name, tensor in sorted(model.state_dict().items()):
        if base_only and any(marker in name for marker in ADAPTER_MARKERS):
            continue
        name = name.replace(".base_layer.", ".")  # peft wraps the layers it adapts
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        data = tensor.detach().to("cpu").contiguous()
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


class LiveModel:
    """Backends over one model that is being trained.

    Args:
        model: the model the Trainer trains (a PEFT model or a full model), unwrapped.
        tokenizer: its tokenizer (copied: scoring must not change the trainer's).
        name: how reports name it (the run's output folder, or the model's name).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, name: str) -> None:
        if tokenizer is None:
            raise ForgettingError("ForgettingCallback: the Trainer has no tokenizer (processing_class); pass "
                                  "processing_class=tokenizer to the Trainer or tokenizer= to the callback")
        self.model = model
        self.name = name
        self.tokenizer = copy.deepcopy(tokenizer)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.peft = is_peft(model)
        parameter = next(model.parameters())
        self.shared = SharedModel(model, parameter.device, parameter.dtype)
        if self.peft:
            active = model.active_adapter
            self.adapter: Optional[str] = active if isinstance(active, str) else active[0]
            self.shared.adapters = [self.adapter]
            self.shared._active = self.adapter
        else:
            self.adapter = None
        self.run = uuid.uuid4().hex[:12]

    def _backend(self, name: str, adapter: Optional[str], fingerprint: str) -> HFBackend:
        backend = HFBackend(self.shared, self.tokenizer, adapter=adapter, name=name, fingerprint=lambda: fingerprint)
        backend.prefix_cache = None  # weights change between evaluations: no KV cache outlives a call
        return backend

    def base(self, folder: Any = None) -> HFBackend:
        """The base: the adapter disabled, or (a full fine-tune) the model as it is now, before training.

        ``folder``: the checkpoint folder the base was loaded from. Its identity is then the
        plugin's for that folder, so the plugin's result cache and committed baselines serve it;
        its config must agree with the model in memory. Without it, a digest of the weights.
        """
        if folder is None:
            fingerprint = f"weights:{weights_digest(self.model, base_only=self.peft)}"
            return self._backend(f"{self.name} (base)", None, fingerprint)
        from pytest_forgetting.backends.fingerprint import spec_fingerprint
        from pytest_forgetting.backends.spec import inspect_folder, locate

        spec = inspect_folder(locate(str(folder), "base", "base_model="), str(folder), "base", "base_model=")
        if spec.kind != "checkpoint":
            raise ForgettingError(f"ForgettingCallback: base_model={folder} is not a model checkpoint (config.json "
                                  "and weights); give the folder the base was loaded from")
        self._check_config(spec.path)
        return self._backend(str(folder), None, spec_fingerprint(spec))

    def _check_config(self, folder: Any) -> None:
        """The folder's config.json must describe the model in memory (architecture and sizes)."""
        import json
        from pathlib import Path

        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        live = (self.model.get_base_model() if self.peft else self.model).config
        keys = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
        differing = [f"{key} {config.get(key)} vs {getattr(live, key, None)}" for key in keys
                     if config.get(key) is not None and config.get(key) != getattr(live, key, None)]
        if differing:
            raise ForgettingError(f"ForgettingCallback: base_model={folder} is not the model being trained "
                                  f"({', '.join(differing)} in memory); give the folder it was loaded from")

    def at_step(self, step: int) -> HFBackend:
        """The model as it is at ``step`` (the adapter active), a candidate of its own."""
        return self._backend(f"{self.name} at step {step}", self.adapter, f"live:{self.run}:step-{step}")


@contextlib.contextmanager
def training_state_kept(model: torch.nn.Module) -> Iterator[None]:
    """Score in eval mode with gradients off; restore train mode and every RNG state afterwards."""
    from pytest_forgetting.engine.random_state import random_states_kept

    was_training = model.training
    model.eval()
    try:
        with random_states_kept(), torch.no_grad():
            yield
    finally:
        model.train(was_training)
