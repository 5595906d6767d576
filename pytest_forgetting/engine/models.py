"""The session's pair of models: resolved at start-up, loaded on first use, once."""

from __future__ import annotations

from typing import Any, Optional

from pytest_forgetting.backends.contract import ModelHandle
from pytest_forgetting.backends.spec import LoadOptions, ModelSpec


class ModelPair:
    """The base and tuned models of a session, each loaded at most once.

    Loading goes through the ``pytest_forgetting_load_model`` hook, so plugins can provide
    other backends. For an adapter, the base is loaded first and handed to the hook so the
    adapter can share its weights.
    """

    def __init__(self, hook: Any, config: Any, base_spec: ModelSpec, tuned_spec: ModelSpec,
                 options: LoadOptions) -> None:
        self._hook = hook
        self._config = config
        self.base_spec = base_spec
        self.tuned_spec = tuned_spec
        self.options = options
        self._base: Optional[ModelHandle] = None
        self._tuned: Optional[ModelHandle] = None
        self.loads = 0

    def custom_loaders(self) -> list[str]:
        """``module.function`` of every ``pytest_forgetting_load_model`` besides the default one."""
        caller = getattr(self._hook, "pytest_forgetting_load_model", None)
        impls = caller.get_hookimpls() if caller is not None and hasattr(caller, "get_hookimpls") else []
        names = [f"{impl.function.__module__}.{impl.function.__qualname__}" for impl in impls]
        return sorted(name for name in names if name != "pytest_forgetting.plugin.pytest_forgetting_load_model")

    def _load(self, spec: ModelSpec, base: Optional[ModelHandle]) -> ModelHandle:
        handle = self._hook.pytest_forgetting_load_model(
            config=self._config, spec=spec, options=self.options, base=base
        )
        if handle is None:
            raise RuntimeError(f"no pytest_forgetting_load_model implementation loaded {spec.source}")
        self.loads += 1
        return handle

    @property
    def base(self) -> ModelHandle:
        """The base model (loaded on first access)."""
        if self._base is None:
            self._base = self._load(self.base_spec, None)
        return self._base

    @property
    def tuned(self) -> ModelHandle:
        """The tuned model (loaded on first access; an adapter shares the base's weights)."""
        if self._tuned is None:
            base = self.base if self.tuned_spec.kind == "adapter" else self._base
            tuned = self._load(self.tuned_spec, base)
            from types import SimpleNamespace

            from pytest_forgetting.backends.hf.loading import check_same_vocabulary, load_tokenizer

            # the base's tokenizer alone is enough: a base served from a baseline never loads
            base = self._base or SimpleNamespace(tokenizer=load_tokenizer(self.base_spec))
            check_same_vocabulary(base, tuned)  # type: ignore[arg-type]
            self._tuned = tuned
        return self._tuned


class LazyHandle:
    """A stand-in for a pair's model that loads it only when scoring actually needs it.

    Its name, role, fingerprint and scoring identity (dtype, device type) come from the
    spec and the load options, so cached or baseline results can be used without loading.
    """

    def __init__(self, pair: ModelPair, role: str) -> None:
        self._pair = pair
        self.role = role
        self._spec = pair.base_spec if role == "base" else pair.tuned_spec
        self.name = self._spec.display_name
        self._fingerprint: Optional[str] = None

    def load(self) -> ModelHandle:
        """The real handle (loaded on first call)."""
        return self._pair.base if self.role == "base" else self._pair.tuned

    @property
    def fingerprint(self) -> str:
        """The model's fingerprint, from its files (no loading).

        When a plugin or conftest implements ``pytest_forgetting_load_model``, the loaders'
        names are part of it: results cached with one loader are not reused with another.
        """
        if self._fingerprint is None:
            from pytest_forgetting.backends.fingerprint import spec_fingerprint

            fingerprint = spec_fingerprint(self._spec)
            loaders = self._pair.custom_loaders()
            if loaders:
                import hashlib

                fingerprint = hashlib.sha256(f"{fingerprint}|loaders={','.join(loaders)}".encode()).hexdigest()
            self._fingerprint = fingerprint
        return self._fingerprint

    def identity(self) -> tuple[str, str, str]:
        """(fingerprint, dtype, device type) as this session would load the model."""
        from pytest_forgetting.backends.hf.device import resolve_device, resolve_dtype

        device = resolve_device(self._pair.options.device)
        return self.fingerprint, str(resolve_dtype(self._pair.options.dtype, device)), device.type

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.load(), attribute)
