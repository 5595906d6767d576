"""One torch model in memory, shared by the base and every adapter attached to it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch

#: A tokenizer's ``model_max_length`` when none was set (transformers' VERY_LARGE_INTEGER).
_TOKENIZER_UNSET = int(1e30)
DEFAULT_CONTEXT_LENGTH = 2048


class SharedModel:
    """A causal LM in memory, possibly carrying PEFT adapters of which one runs at a time.

    The base runs with every adapter disabled (peft's ``disable_adapter()``), so its logits
    equal the base loaded alone; a candidate adapter runs with only itself active. Several
    adapters on one base (a checkpoint sweep) hold the base weights once.

    Attributes:
        model: the transformers model, or the ``PeftModel`` wrapping it once an adapter is attached.
        path: the folder the base weights were loaded from.
        adapters: names of the attached adapters, in attachment order.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype,
                 path: Optional[Path] = None, placement: Optional[Callable[[], dict[str, Any]]] = None) -> None:
        self.model = model
        self.device = device
        self.dtype = dtype
        self.path = path
        #: For weights placed by a device map: the keyword arguments (device map, memory limits,
        #: a fresh offload folder) peft needs to place each adapter's weights beside them.
        self.placement = placement
        self.adapters: list[str] = []
        self._active: Optional[str] = None

    def attach_adapter(self, folder: Path, name: str) -> None:
        """Load the PEFT adapter in ``folder`` onto these weights under ``name``."""
        from peft import PeftModel

        placed = self.placement() if self.placement is not None else {}
        if not self.adapters:
            self.model = PeftModel.from_pretrained(self.model, str(folder), adapter_name=name,
                                                   is_trainable=False, **placed).eval()
        else:
            self.model.load_adapter(str(folder), adapter_name=name, is_trainable=False,  # type: ignore[operator]
                                    **placed)
            self.model.set_adapter(self._active or self.adapters[0])  # type: ignore[operator]
            self.model.eval()
        self.adapters.append(name)
        self._active = self._active or name

    def running_as(self, adapter: Optional[str]) -> contextlib.AbstractContextManager:
        """A context in which the model computes as ``adapter`` (None: the base, adapters off)."""
        if not self.adapters:
            return contextlib.nullcontext()
        if adapter is None:
            return self.model.disable_adapter()  # type: ignore[operator,union-attr,no-any-return]
        return self._activated(adapter)

    @contextlib.contextmanager
    def _activated(self, adapter: str) -> Iterator[None]:
        if self._active != adapter:
            self.model.set_adapter(adapter)  # type: ignore[operator]
            self._active = adapter
        yield


def context_length(config: Any, tokenizer: Any = None, default: int = DEFAULT_CONTEXT_LENGTH) -> int:
    """The model's context length in tokens, resolved as lm-evaluation-harness resolves it.

    The text model's config (``text_config`` of a composite config, else the config):
    ``n_positions``, ``max_position_embeddings``, ``n_ctx``, the first one set; else the
    tokenizer's ``model_max_length`` when it is set; else ``default`` (lm-eval's
    ``resolve_max_length``, so truncation matches it).
    """
    text_config = getattr(config, "text_config", None) or config
    for attribute in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(text_config, attribute, None)
        if value is not None:
            return int(value)
    model_max_length = getattr(tokenizer, "model_max_length", None)
    if model_max_length is not None and int(model_max_length) != _TOKENIZER_UNSET:
        return int(model_max_length)
    return default
