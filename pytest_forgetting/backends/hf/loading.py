"""The default loader: transformers checkpoints and PEFT adapters into :class:`HFBackend`.

This is the default implementation of the ``pytest_forgetting_load_model`` hook. An
adapter is attached to its base's :class:`SharedModel` when the base is already loaded, so
the base weights are in memory once, however many adapters join them.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import TYPE_CHECKING, Any, Callable, Optional

from pytest_forgetting.backends.contract import Backend
from pytest_forgetting.backends.fingerprint import spec_fingerprint
from pytest_forgetting.backends.spec import LoadOptions, ModelSpec
from pytest_forgetting.errors import ForgettingError

if TYPE_CHECKING:
    from pytest_forgetting.backends.hf.backend import HFBackend
    from pytest_forgetting.backends.hf.shared import SharedModel


def load_model(spec: ModelSpec, options: LoadOptions, base: Optional[Backend]) -> HFBackend:
    """Load ``spec`` as an :class:`HFBackend`; an adapter joins ``base``'s weights when it is their base.

    Several adapters on one base share its :class:`SharedModel`: each is attached under its
    own name and runs with only itself active.
    """
    import torch

    from pytest_forgetting.backends.hf.backend import HFBackend
    from pytest_forgetting.backends.hf.device import resolve_device, resolve_dtype
    from pytest_forgetting.backends.hf.shared import SharedModel
    from pytest_forgetting.backends.placement import check_placement, worker_device

    check_placement(options.device, options.device_map, options.max_memory)

    device = resolve_device(worker_device(options.device, os.environ.get("PYTEST_XDIST_WORKER"),
                                          torch.cuda.device_count()))
    dtype = resolve_dtype(options.dtype, device)
    adapter = None
    if spec.kind == "checkpoint":
        model, device = _load_checkpoint(spec, options, device, dtype)
        shared = SharedModel(model, device, dtype, spec.path, placement=_placement(options))
    elif spec.kind == "adapter":
        assert spec.base is not None, "an adapter spec always carries its base"
        if isinstance(base, HFBackend) and base.shared.path == spec.base.path:
            shared = base.shared
        else:
            model, device = _load_checkpoint(spec.base, options, device, dtype)
            shared = SharedModel(model, device, dtype, spec.base.path, placement=_placement(options))
        adapter = "default" if not shared.adapters else f"candidate-{len(shared.adapters)}"
        _attach_adapter(spec, shared, adapter)
    else:
        raise ForgettingError(
            f"{_flag(spec)} {spec.source}: no plugin loaded this model (a plugin claimed it, but no "
            "pytest_forgetting_load_model implementation returned a backend for it)"
        )
    return HFBackend(
        shared,
        load_tokenizer(spec),
        adapter=adapter,
        name=spec.display_name,
        fingerprint=lambda: spec_fingerprint(spec),
        batch_size=options.batch_size,
        source_path=spec.path,
    )


def load_tokenizer(spec: ModelSpec) -> object:
    """The tokenizer stored with ``spec`` (or its base), with a pad token for batching."""
    from transformers import AutoTokenizer

    folder = spec.tokenizer_path or spec.path
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        raise ForgettingError(
            f"{_flag(spec)} {spec.source}: cannot load a tokenizer from {folder}: {_summary(exc)}"
        ) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load_checkpoint(spec: ModelSpec, options: LoadOptions, device, dtype):  # type: ignore[no-untyped-def]
    """The model in eval mode and the device its inputs go to (with a device map: its embeddings')."""
    from transformers import AutoModelForCausalLM

    placement = _placement(options)
    try:
        with _quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(
                str(spec.path),
                dtype=dtype,
                use_safetensors=None if options.allow_pickle else True,
                trust_remote_code=options.trust_remote_code,
                **(placement() if placement else {}),
            )
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        raise ForgettingError(f"{_flag(spec)} {spec.source}: cannot load the model: {_summary(exc)}") from None
    if options.device_map:
        return model.eval(), input_device(model)
    return model.to(device).eval(), device


def input_device(model):  # type: ignore[no-untyped-def]
    """Where a model placed by a device map takes its inputs: its input embeddings' execution device."""
    import torch

    embeddings = model.get_input_embeddings()
    hook = getattr(embeddings, "_hf_hook", None)
    device = getattr(hook, "execution_device", None)
    if device is None:
        device = embeddings.weight.device
    device = torch.device(device if not isinstance(device, int) else f"cuda:{device}")
    return torch.device("cpu") if device.type == "meta" else device


def _placement(options: LoadOptions) -> "Optional[Callable[[], dict[str, Any]]]":
    """With a device map: what from_pretrained (model and adapters) needs to place weights, a fresh
    offload folder each time; else None."""
    if not options.device_map:
        return None
    from pytest_forgetting.backends.placement import accelerate_limits

    limits = accelerate_limits(options.max_memory) if options.max_memory else None
    return lambda: {"device_map": options.device_map, "max_memory": limits, "offload_folder": _offload_folder()}


def _offload_folder() -> str:
    """A folder for weights a device map puts on disk, removed when the process ends."""
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="pytest-forgetting-offload-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _attach_adapter(spec: ModelSpec, shared: "SharedModel", name: str) -> None:
    assert spec.base is not None
    try:
        with _quiet_transformers():
            shared.attach_adapter(spec.path, name)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        raise ForgettingError(
            f"--tuned-model {spec.source}: the adapter does not fit the base "
            f"{spec.base.source} ({_summary(exc)}); was it trained on another model? pass "
            "the base it was trained on with --base-model"
        ) from None


def _flag(spec: ModelSpec) -> str:
    return "--base-model" if spec.role == "base" else "--tuned-model"


def _summary(exc: BaseException) -> str:
    """The most telling line of a library error (size mismatches first)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "size mismatch" in line or "not found in the base model" in line:
            return line[:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


class _quiet_transformers:
    """Silence transformers' and peft's info/warning chatter while loading."""

    def __enter__(self) -> None:
        from transformers.utils import logging as hf_logging

        self._bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        # a device map that offloads to disk: peft fills the offloaded adapter weights itself
        warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter.*")
        self._levels = {}
        for name in ("transformers", "peft"):
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        from transformers.utils import logging as hf_logging

        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        self._warnings.__exit__(*exc)
        if self._bars:
            hf_logging.enable_progress_bar()
