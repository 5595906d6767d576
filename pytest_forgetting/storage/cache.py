"""A per-item result cache on disk, keyed by everything that can change a score.

Key of a scoring run (:func:`run_key`): plugin version, the model's fingerprint (content of
config, weights, adapter and tokenizer files; see :mod:`pytest_forgetting.backends.fingerprint`),
dtype, device type, the suite's kind and settings (template, delimiter, few-shot examples, chat
template, scorer and its options, generation settings). Key of an item: its content (id,
prompt, choices, answer, targets). A warm run scores only the items that are missing.

Each run key has one JSON file holding ``{"checksum", "entries"}``; the checksum (SHA-256 of
the entries) is verified on read, so a corrupt or truncated file is ignored and recomputed.
Writes merge with what is on disk under a file lock and land atomically (``os.replace``), so
pytest-xdist workers can share a cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator, Optional

from pytest_forgetting import __version__

ENTRY_FORMAT = 1


def digest(payload: Any) -> str:
    """SHA-256 of a JSON-serialisable payload (keys sorted)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()


def suite_settings(suite: Any) -> dict[str, Any]:
    """A suite's kind and settings as JSON-able data: what its scores depend on besides the model."""
    from pytest_forgetting.scoring.scorers import Scorer

    settings = asdict(suite.settings)
    scorer = suite.settings.scorer
    if isinstance(scorer, Scorer):  # its function and declaration
        settings["scorer"] = scorer.key()
    elif callable(scorer):
        settings["scorer"] = f"{scorer.__module__}.{getattr(scorer, '__qualname__', repr(scorer))}"
    return {"kind": suite.kind, "settings": settings}


def run_key(fingerprint: str, dtype: str, device_type: str, suite: Any) -> str:
    """The key of scoring ``suite`` with one model in one precision on one device type."""
    return digest({"plugin": __version__, "format": ENTRY_FORMAT, "model": fingerprint, "dtype": dtype,
                   "device": device_type, **suite_settings(suite)})


def item_key(item: Any) -> str:
    """The key of one item: its full content."""
    return digest(asdict(item))[:32]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class ResultCache:
    """Per-item results under ``folder`` (one file per run key)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _file(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def load(self, key: str) -> dict[str, Any]:
        """The entries stored under ``key``; empty when missing, corrupt or partial."""
        return read_entries(self._file(key))

    def store(self, key: str, entries: dict[str, Any]) -> None:
        """Merge ``entries`` into the file for ``key`` (locked, atomic)."""
        if not entries:
            return
        path = self._file(key)
        with _locked(path):
            merged = read_entries(path)
            merged.update(entries)
            write_entries(path, merged)

    def clear(self) -> None:
        """Delete every cached result."""
        shutil.rmtree(self.folder, ignore_errors=True)


def read_entries(path: Path) -> dict[str, Any]:
    """Entries of a checksummed JSON file, or {} if it is missing or does not verify."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["entries"]
        if data.get("checksum") != digest(entries) or not isinstance(entries, dict):
            return {}
        return entries
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_entries(path: Path, entries: dict[str, Any], **header: Any) -> None:
    """Write entries with their checksum atomically (temporary file, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({**header, "checksum": digest(entries), "entries": entries},
                                    indent=1, sort_keys=True, default=str), encoding="utf-8")
    os.replace(temporary, path)


def default_folder(config: Optional[Any]) -> Path:
    """pytest's cache folder (``.pytest_cache/d/forgetting``), or a user-level folder."""
    if config is not None and getattr(config, "cache", None) is not None:
        return Path(config.cache.mkdir("forgetting"))
    from pytest_forgetting.embedded import cache_root

    return cache_root() / "results"
