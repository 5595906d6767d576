"""The default loader: transformers checkpoints and PEFT adapters into :class:`HFModelHandle`.

This is the default implementation of the ``pytest_forgetting_load_model`` hook. An
adapter is attached to its base's :class:`SharedModel` when the base is already loaded, so
the base weights are in memory once.
"""

from __future__ import annotations

import logging
from typing import Optional

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.backends.fingerprint import spec_fingerprint
from pytest_forgetting.backends.contract import ModelHandle
from pytest_forgetting.backends.spec import LoadOptions, ModelSpec


def load_model(spec: ModelSpec, options: LoadOptions, base: Optional[ModelHandle]) -> ModelHandle:
    """Load ``spec`` as a :class:`HFModelHandle`; an adapter reuses ``base``'s weights."""
    from pytest_forgetting.backends.hf.device import resolve_device, resolve_dtype
    from pytest_forgetting.backends.hf.backend import HFModelHandle, SharedModel

    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    if spec.kind == "checkpoint":
        model = _load_checkpoint(spec, options, device, dtype)
        shared = SharedModel(model, device, dtype)
    else:
        assert spec.base is not None, "an adapter spec always carries its base"
        if isinstance(base, HFModelHandle) and _same_folder(base, spec.base):
            shared = base.shared
        else:
            shared = SharedModel(_load_checkpoint(spec.base, options, device, dtype), device, dtype)
        shared.attach_adapter(_attach_adapter(spec, shared.model))
    return HFModelHandle(
        shared,
        load_tokenizer(spec),
        role=spec.role,
        name=spec.display_name,
        fingerprint=lambda: spec_fingerprint(spec),
        batch_size=options.batch_size,
        source_path=spec.path,
    )


def _same_folder(handle: ModelHandle, spec: ModelSpec) -> bool:
    return getattr(handle, "source_path", None) == spec.path


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
    from transformers import AutoModelForCausalLM

    try:
        with _quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(
                str(spec.path),
                dtype=dtype,
                use_safetensors=None if options.allow_pickle else True,
                trust_remote_code=options.trust_remote_code,
            )
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        raise ForgettingError(f"{_flag(spec)} {spec.source}: cannot load the model: {_summary(exc)}") from None
    return model.to(device).eval()


def _attach_adapter(spec: ModelSpec, model):  # type: ignore[no-untyped-def]
    from peft import PeftModel

    assert spec.base is not None
    try:
        with _quiet_transformers():
            peft_model = PeftModel.from_pretrained(model, str(spec.path), is_trainable=False)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        raise ForgettingError(
            f"--tuned-model {spec.source}: the adapter does not fit the base "
            f"{spec.base.source} ({_summary(exc)}); was it trained on another model? pass "
            "the base it was trained on with --base-model"
        ) from None
    return peft_model.eval()


def check_same_vocabulary(base: ModelHandle, tuned: ModelHandle) -> None:
    """Paired scores need one tokenizer: fail with one line if the vocabularies differ."""
    if not all(hasattr(getattr(h, "tokenizer", None), "get_vocab") for h in (base, tuned)):
        return  # a backend without a transformers tokenizer checks this itself
    base_vocab = base.tokenizer.get_vocab()  # type: ignore[attr-defined]
    tuned_vocab = tuned.tokenizer.get_vocab()  # type: ignore[attr-defined]
    if base_vocab == tuned_vocab:
        return
    differing = sorted(set(base_vocab.items()) ^ set(tuned_vocab.items()))
    example = ", ".join(repr(token) for token, _ in differing[:3])
    raise ForgettingError(
        f"the tuned model's tokenizer differs from the base's ({len(base_vocab)} vs "
        f"{len(tuned_vocab)} tokens; {len(differing)} entries differ, e.g. {example}); paired "
        "scoring needs the same vocabulary: save the base tokenizer with the tuned model"
    )


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
        self._levels = {}
        for name in ("transformers", "peft"):
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        from transformers.utils import logging as hf_logging

        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        if self._bars:
            hf_logging.enable_progress_bar()
