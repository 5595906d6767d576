"""The default loader: transformers checkpoints and PEFT adapters into :class:`HFBackend`.

This is the default implementation of the ``pytest_forgetting_load_model`` hook. An
adapter is attached to its base's :class:`SharedModel` when the base is already loaded, so
the base weights are in memory once, however many adapters join them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Mapping, Optional

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
    from pytest_forgetting.backends.hf.backend import HFBackend
    from pytest_forgetting.backends.hf.device import resolve_device, resolve_dtype
    from pytest_forgetting.backends.hf.shared import SharedModel

    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    adapter = None
    if spec.kind == "checkpoint":
        shared = SharedModel(_load_checkpoint(spec, options, device, dtype), device, dtype, spec.path)
    elif spec.kind == "adapter":
        assert spec.base is not None, "an adapter spec always carries its base"
        if isinstance(base, HFBackend) and base.shared.path == spec.base.path:
            shared = base.shared
        else:
            shared = SharedModel(_load_checkpoint(spec.base, options, device, dtype), device, dtype, spec.base.path)
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


def check_same_vocabulary(base: Mapping[str, int], candidate: Mapping[str, int], name: str) -> None:
    """Paired scores need one tokenizer: fail with one line if the vocabularies differ."""
    if base == candidate:
        return
    differing = sorted(set(base.items()) ^ set(candidate.items()))
    example = ", ".join(repr(token) for token, _ in differing[:3])
    raise ForgettingError(
        f"{name}: the tuned model's tokenizer differs from the base's ({len(base)} vs "
        f"{len(candidate)} tokens; {len(differing)} entries differ, e.g. {example}); paired "
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
