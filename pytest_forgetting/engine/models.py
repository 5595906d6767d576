"""The models of a session: each known by its source, loaded on first use, at most once.

A :class:`ModelSlot` stands for the base or one candidate. Its name and its
:class:`~pytest_forgetting.backends.contract.Identity` (what the result cache keys on) come
from the spec and the load options when the model is a local folder, so cached or baseline
results are used without loading anything; the backend itself is loaded only when scoring
needs it. A slot can also hold a backend built elsewhere (a training loop's live model).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Optional, Sequence

from pytest_forgetting.backends.contract import Backend, Identity, describe
from pytest_forgetting.backends.spec import LoadOptions, ModelSpec
from pytest_forgetting.errors import ForgettingError

#: ``loader(spec, options, base)`` returns the backend for ``spec``; ``base`` is the loaded base
#: backend when ``spec`` is an adapter (share its weights), else None.
Loader = Callable[[ModelSpec, LoadOptions, Optional[Backend]], Backend]


def default_loader(spec: ModelSpec, options: LoadOptions, base: Optional[Backend]) -> Backend:
    """Served models (``openai:...``, ``openai+http://...#MODEL``), else transformers/peft (checkpoints, adapters)."""
    from pytest_forgetting.backends.served.address import is_served

    if spec.kind == "external" and is_served(spec.source):
        from pytest_forgetting.backends.served.backend import load_served
        from pytest_forgetting.backends.served.requests import RequestPolicy

        return load_served(spec.source, RequestPolicy(concurrency=options.request_concurrency,
                                                      timeout=options.request_timeout,
                                                      retries=options.request_retries))
    from pytest_forgetting.backends.hf.loading import load_model

    return load_model(spec, options, base)


class ModelSlot:
    """The base or one candidate of a session.

    Attributes:
        label: how reports and test ids name it (``"base"``, ``"careful"``, ``"checkpoint-500"``).
        role: ``"base"`` or ``"candidate"``.
        spec: what the model's source points at (None for a backend handed in directly).
        loads: how many times the backend was loaded (0 or 1).
    """

    def __init__(self, label: str, role: str, *, spec: Optional[ModelSpec] = None,
                 backend: Optional[Backend] = None, load: Optional[Callable[[], Backend]] = None,
                 loader_names: Sequence[str] = (), options: LoadOptions = LoadOptions(),
                 identity: Optional[Identity] = None) -> None:
        if (spec is None) == (backend is None):
            raise ValueError("a model slot holds a spec or a backend, not both")
        self.label = label
        self.role = role
        self.spec = spec
        self.loads = 0
        self._backend = backend
        self._load = load
        self._loader_names = tuple(loader_names)
        self._options = options
        self._identity = identity

    @property
    def name(self) -> str:
        """Display name: the path or id the user gave, or the backend's name."""
        return self.spec.display_name if self.spec is not None else self._backend.name  # type: ignore[union-attr]

    @property
    def loaded(self) -> bool:
        """Whether the backend is in memory."""
        return self._backend is not None

    def backend(self) -> Backend:
        """The backend, loaded on the first call."""
        if self._backend is None:
            assert self._load is not None
            backend = self._load()
            if not isinstance(backend, Backend):
                raise ForgettingError(
                    f"{self.name}: the model loader returned {describe(backend)}, not a "
                    "pytest_forgetting.Backend; subclass Backend and declare its capabilities"
                )
            self._backend = backend
            self.loads += 1
        return self._backend

    def identity(self) -> Identity:
        """What the result cache keys this model's scores on, without loading a local model.

        A local folder: its fingerprint (content of config, weights and tokenizer files; for
        an adapter chained to its base's), with the names of any custom loaders mixed in, and
        the dtype and device type this session loads it with. Otherwise: the backend's own.
        """
        if self._identity is None:
            if self.spec is None or self.spec.kind == "external":
                self._identity = self.backend().identity()
            else:
                self._identity = self._spec_identity(self.spec)
        return self._identity

    def _spec_identity(self, spec: ModelSpec) -> Identity:
        from pytest_forgetting.backends.fingerprint import spec_fingerprint
        from pytest_forgetting.backends.hf.device import resolve_device, resolve_dtype

        fingerprint = spec_fingerprint(spec)
        if self._loader_names:
            mixed = f"{fingerprint}|loaders={','.join(self._loader_names)}"
            fingerprint = hashlib.sha256(mixed.encode()).hexdigest()
        device = resolve_device(self._options.device)
        return Identity(fingerprint, str(resolve_dtype(self._options.dtype, device)), device.type)

    def __repr__(self) -> str:
        return f"<ModelSlot {self.label!r} ({self.role}) {self.name!r}{' loaded' if self.loaded else ''}>"


def candidate_labels(sources: Sequence[str]) -> list[str]:
    """Short, distinct names for candidates: the folder name, with parents added until unique.

    ``out/checkpoint-500`` -> ``checkpoint-500``; two ``final`` folders of ``run-a`` and
    ``run-b`` -> ``run-a/final`` and ``run-b/final``. ``base`` names the base model, so a
    candidate never gets it alone.
    """
    parts = [Path(source.rstrip("/")).parts or (source,) for source in sources]

    def distinct(labels: list[str]) -> bool:
        return len(set(labels)) == len(labels) and "base" not in labels

    depth = 1
    while True:
        labels = ["/".join(p[-depth:]) for p in parts]
        if distinct(labels) or depth >= max(len(p) for p in parts):
            break
        depth += 1
    if not distinct(labels):
        labels = [f"{label}#{index}" for index, label in enumerate(labels, 1)]
    return labels
