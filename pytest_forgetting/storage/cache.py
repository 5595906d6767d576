"""A per-item result cache on disk, keyed by everything that can change a score.

Key of a scoring run (:func:`run_key`), a SHA-256 over exactly:

- the plugin version and the cache's entry format;
- the model's fingerprint (content of config, weights, adapter and tokenizer files, and the
  names of custom loaders; for a served model its URL, model id, what the server lists and
  its ``system_fingerprint``; see :mod:`pytest_forgetting.backends.fingerprint`);
- the dtype and the device type (``cpu``, ``cuda``, ``remote``);
- the scoring environment (:func:`scoring_environment`): for a model computed here, the
  installed versions of torch, transformers, peft and tokenizers (``None`` where one is not
  installed) and the device's name (the GPU model for ``cuda``, the CPU model for ``cpu``);
  for a served model (device ``remote``) nothing, since the libraries that score it are the
  server's and its identity already carries what the server reports;
- the suite's kind and settings (template, delimiter, few-shot examples, chat template,
  scorer and its options, generation settings).

Key of an item: its content (id, prompt, choices, answer, targets). A warm run scores only the
items that are missing. Drift is keyed by both models' fingerprints and environments.

Each run key has one JSON file holding ``{"checksum", "entries"}``; the checksum (SHA-256 of
the entries) is verified on read, so a corrupt, truncated or tampered file reads as empty and
is recomputed. Writes merge with what is on disk under a file lock and land atomically (a
temporary file in the same folder, then ``os.replace``), so pytest-xdist workers and parallel
runs can share a cache; a temporary file left by a killed writer is never read and is removed
by the next writer of that file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Optional

from pytest_forgetting import __version__

ENTRY_FORMAT = 1
#: The libraries whose versions can change a score computed here (kernels, tokenization, adapters).
SCORING_LIBRARIES = ("torch", "transformers", "peft", "tokenizers")
#: The device type of a model scored elsewhere (a served endpoint).
REMOTE = "remote"


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


@functools.lru_cache(maxsize=None)
def library_versions() -> dict[str, Optional[str]]:
    """Installed versions of :data:`SCORING_LIBRARIES` (None where absent), read once from package metadata."""
    versions: dict[str, Optional[str]] = {}
    for name in SCORING_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def scoring_environment(device_type: str) -> dict[str, Any]:
    """What besides the model and settings can change a score computed on ``device_type`` here.

    The library versions and the device's name; nothing for a served model (``remote``): the
    server's libraries are not known here, and its identity already holds what it reports.
    """
    if device_type == REMOTE:
        return {}
    from pytest_forgetting.backends.hf.device import device_name

    return {"libraries": library_versions(), "device_name": device_name(device_type)}


def run_key(fingerprint: str, dtype: str, device_type: str, suite: Any,
            environment: Optional[dict[str, Any]] = None) -> str:
    """The key of scoring ``suite`` with one model in one precision on one device (see the module's docstring).

    ``environment`` defaults to :func:`scoring_environment` of ``device_type``.
    """
    if environment is None:
        environment = scoring_environment(device_type)
    return digest({"plugin": __version__, "format": ENTRY_FORMAT, "model": fingerprint, "dtype": dtype,
                   "device": device_type, "environment": environment, **suite_settings(suite)})


def item_key(item: Any) -> str:
    """The key of one item: its full content."""
    return digest(asdict(item))[:32]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a ``.lock`` file beside it) for the block."""
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
        with locked(path):
            remove_stale_temporaries(path)
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
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return {}


def write_entries(path: Path, entries: dict[str, Any], **header: Any) -> None:
    """Write entries with their checksum atomically (temporary file, then ``os.replace``).

    The temporary file is removed when the write fails (a full disk) or is interrupted; the
    file at ``path`` is then the one that was there before, or absent.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**header, "checksum": digest(entries), "entries": entries},
                      indent=1, sort_keys=True, default=str)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files a killed writer of ``path`` left (call while holding its lock)."""
    with contextlib.suppress(OSError):
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


def write_failure(what: str, folder: Path, exc: OSError, elsewhere: str) -> str:
    """The one-line message of a failed write: what, where, why, and how to fix it (``elsewhere``: the other fix)."""
    import errno

    reason = exc.strerror or str(exc) or type(exc).__name__
    fix = "free space there" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "make it writable"
    return f"could not write {what} to {folder}: {reason} (errno {exc.errno}); {fix} or {elsewhere}"


def default_folder(config: Optional[Any]) -> Path:
    """pytest's cache folder (``.pytest_cache/d/forgetting``), or a user-level folder."""
    if config is not None and getattr(config, "cache", None) is not None:
        return Path(config.cache.mkdir("forgetting"))
    from pytest_forgetting.embedded import cache_root

    return cache_root() / "results"
