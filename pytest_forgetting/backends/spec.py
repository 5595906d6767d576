"""What a model path points at, worked out from its files alone (no torch, no weights).

Everything here runs at pytest start-up, so it only reads small JSON files and lists
folders. Loading weights is :mod:`pytest_forgetting.backends.hf.loading`'s job.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional

from pytest_forgetting.errors import ForgettingError

Kind = Literal["checkpoint", "adapter"]
Role = Literal["base", "tuned"]

SAFETENSORS_SUFFIX = ".safetensors"
PICKLE_NAMES = ("pytorch_model.bin", "adapter_model.bin", "model.pt", "pytorch_model.pt")


@dataclass(frozen=True)
class ModelSpec:
    """A model to load, as resolved from the command line or ini file.

    Attributes:
        role: ``"base"`` or ``"tuned"``.
        source: what the user gave (a path or a model id).
        path: the local folder holding the files.
        kind: ``"checkpoint"`` (config.json + weights) or ``"adapter"`` (PEFT adapter).
        pickle_weights: True when the only weights are pickle files (``*.bin``).
        needs_remote_code: True when ``config.json`` maps to custom code (``auto_map``).
        base: for an adapter, the spec of the base model it is applied to.
        tokenizer_path: folder holding the tokenizer files used for this model.
    """

    role: Role
    source: str
    path: Path
    kind: Kind
    pickle_weights: bool = False
    needs_remote_code: bool = False
    base: Optional["ModelSpec"] = None
    tokenizer_path: Optional[Path] = field(default=None)

    @property
    def display_name(self) -> str:
        """A short human-readable name: the folder or model id the user gave."""
        return self.source


@dataclass(frozen=True)
class LoadOptions:
    """How to load models: where, in which precision, and what is allowed."""

    device: str = "auto"
    dtype: str = "auto"
    batch_size: Optional[int] = None  # None = automatic
    trust_remote_code: bool = False
    allow_pickle: bool = False


def locate(source: str, role: str, flag: str) -> Path:
    """Find ``source`` on disk: a folder, or a model id already in the local HF cache."""
    expanded = Path(os.path.expanduser(source))
    if expanded.exists():
        if not expanded.is_dir():
            raise ForgettingError(
                f"{flag} {source}: is a file; expected a model folder (config.json + weights) "
                "or a PEFT adapter folder (adapter_config.json)"
            )
        return expanded.resolve()
    cached = _find_in_hf_cache(source)
    if cached is not None:
        return cached
    from pytest_forgetting import embedded

    if source in embedded.EMBEDDED_IDS:
        return embedded.ensure_embedded_model()  # converted once, then reused from the cache
    raise ForgettingError(
        f"{flag} {source}: no such folder, and no model with that id in the local Hugging Face "
        f"cache; give the path of the {role} model's folder"
    )


def _find_in_hf_cache(model_id: str) -> Optional[Path]:
    """The cached snapshot folder of ``model_id`` if it is already downloaded, else None."""
    if model_id.count("/") != 1 or model_id.startswith(("/", ".", "~")):
        return None
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - transformers always brings huggingface_hub
        return None
    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        return None


def inspect_folder(path: Path, source: str, role: Role, flag: str) -> ModelSpec:
    """Classify a folder as a checkpoint or an adapter and record what loading it needs."""
    names = {entry.name for entry in path.iterdir()}
    if "adapter_config.json" in names:
        kind: Kind = "adapter"
        weights = [n for n in names if n.startswith("adapter_model")]
        config_file = path / "adapter_config.json"
    elif "config.json" in names:
        kind = "checkpoint"
        weights = [n for n in names if n.endswith(SAFETENSORS_SUFFIX) or n in PICKLE_NAMES
                   or (n.startswith("pytorch_model") and n.endswith(".bin"))]
        config_file = path / "config.json"
    else:
        shown = ", ".join(sorted(names)[:6]) or "nothing"
        raise ForgettingError(
            f"{flag} {source}: is neither a model checkpoint (config.json) nor a PEFT adapter "
            f"(adapter_config.json); the folder holds: {shown}"
        )
    if not weights:
        expected = "adapter_model.safetensors" if kind == "adapter" else "model.safetensors"
        raise ForgettingError(
            f"{flag} {source}: {kind} folder has no weights; expected {expected}"
        )
    config = read_json(config_file, flag, source)
    pickle_only = not any(n.endswith(SAFETENSORS_SUFFIX) for n in weights)
    return ModelSpec(
        role=role,
        source=source,
        path=path,
        kind=kind,
        pickle_weights=pickle_only,
        needs_remote_code=kind == "checkpoint" and "auto_map" in config,
        tokenizer_path=path if _has_tokenizer(names) else None,
    )


def read_json(file: Path, flag: str, source: str) -> dict:
    """Read a small JSON config file with a one-line error if it is broken."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ForgettingError(f"{flag} {source}: cannot read {file.name}: {exc}") from None
    if not isinstance(data, dict):
        raise ForgettingError(f"{flag} {source}: {file.name} is not a JSON object")
    return data


def _has_tokenizer(names: set[str]) -> bool:
    return bool(names & {"tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json"})


def resolve_pair(
    tuned_source: str, base_source: Optional[str], options: LoadOptions
) -> tuple[ModelSpec, ModelSpec]:
    """Resolve ``--tuned-model`` and ``--base-model`` into (base, tuned) specs.

    Raises :class:`ForgettingError` for every problem that can be seen without loading
    weights: missing paths, unknown folders, an adapter whose base is not available
    offline, a full checkpoint without a base, pickle-only weights, custom code.
    """
    tuned_path = locate(tuned_source, "tuned", "--tuned-model")
    tuned = inspect_folder(tuned_path, tuned_source, "tuned", "--tuned-model")
    if tuned.kind == "adapter":
        adapter_config = read_json(tuned_path / "adapter_config.json", "--tuned-model", tuned_source)
        named_base = adapter_config.get("base_model_name_or_path")
        if base_source is None:
            if not named_base:
                raise ForgettingError(
                    f"--tuned-model {tuned_source}: adapter_config.json names no base model; "
                    "pass --base-model PATH"
                )
            try:
                base_path = locate(named_base, "base", "adapter base")
            except ForgettingError:
                raise ForgettingError(
                    f"--tuned-model {tuned_source}: the adapter's base '{named_base}' cannot be "
                    "found offline (not a folder, not in the local Hugging Face cache); pass "
                    "--base-model PATH"
                ) from None
            base_source = named_base
        else:
            base_path = locate(base_source, "base", "--base-model")
    else:
        if base_source is None:
            raise ForgettingError(
                f"--tuned-model {tuned_source}: is a full checkpoint, which names no base; pass "
                "--base-model PATH (the model it was fine-tuned from)"
            )
        base_path = locate(base_source, "base", "--base-model")
    base = inspect_folder(base_path, base_source, "base", "--base-model")
    if base.kind != "checkpoint":
        raise ForgettingError(
            f"--base-model {base_source}: is a PEFT adapter; the base must be a full checkpoint "
            "(config.json + weights)"
        )
    for spec, flag in ((base, "--base-model"), (tuned, "--tuned-model")):
        _check_safety(spec, flag, options)
    if tuned.kind == "adapter":
        tuned = _with(tuned, base=base)
    if tuned.tokenizer_path is None:
        tuned = _with(tuned, tokenizer_path=base.tokenizer_path or base.path)
    if base.tokenizer_path is None:
        base = _with(base, tokenizer_path=base.path)
    return base, tuned


def _check_safety(spec: ModelSpec, flag: str, options: LoadOptions) -> None:
    if spec.pickle_weights and not options.allow_pickle:
        raise ForgettingError(
            f"{flag} {spec.source}: has only pickle weights (*.bin), which can run arbitrary code "
            "when loaded; convert them to safetensors, or pass --allow-pickle-weights if you "
            "trust the files"
        )
    if spec.needs_remote_code and not options.trust_remote_code:
        raise ForgettingError(
            f"{flag} {spec.source}: config.json maps to custom model code (auto_map); pass "
            "--trust-remote-code if you trust that code"
        )


def _with(spec: ModelSpec, **changes: object) -> ModelSpec:
    return replace(spec, **changes)  # type: ignore[arg-type]
