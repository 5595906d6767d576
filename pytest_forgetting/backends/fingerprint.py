"""Model fingerprints: a content hash of everything that defines a model's outputs.

What is hashed, exactly: the bytes of every file in the model folder that is a config
(``*.json``), a weight file (``*.safetensors``, ``*.bin``, ``*.pt``), or a tokenizer file
(``tokenizer.*``, ``*.model``, ``vocab.*``, ``merges.txt``); for an adapter, the same for the
adapter folder *and* the fingerprint of its base. Files are hashed in full (never sampled),
so changed weights always change the fingerprint. To stay cheap for multi-GB models, a
file's digest is remembered per process keyed by (path, size, mtime_ns, ctime_ns, inode):
any write to a file changes its ctime, so a remembered digest is never reused for changed
content.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Optional

_HASHED_SUFFIXES = (".json", ".safetensors", ".bin", ".pt", ".model", ".txt", ".jinja")
_CHUNK = 1 << 22
_digests: dict[tuple[str, int, int, int, int], str] = {}


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, remembered while the file's stat is unchanged."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
    cached = _digests.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    _digests[key] = digest.hexdigest()
    return _digests[key]


def hashed_files(folder: Path) -> list[Path]:
    """The files of ``folder`` (recursively) that enter its fingerprint, sorted."""
    files = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            if name.endswith(_HASHED_SUFFIXES) and not name.startswith("."):
                files.append(Path(root) / name)
    return sorted(files)


def folder_fingerprint(folder: Path, *, parent: Optional[str] = None, extra: Iterable[str] = ()) -> str:
    """Fingerprint of a model folder, optionally chained to its base's fingerprint."""
    digest = hashlib.sha256()
    if parent:
        digest.update(f"base:{parent}\n".encode())
    for item in extra:
        digest.update(f"extra:{item}\n".encode())
    for file in hashed_files(folder):
        digest.update(f"{file.relative_to(folder).as_posix()}:{file_digest(file)}\n".encode())
    return digest.hexdigest()


def spec_fingerprint(spec: object) -> str:
    """The fingerprint of a :class:`ModelSpec`, computed from its files without loading it.

    A checkpoint: its folder. An adapter: its folder chained to its base's fingerprint.
    """
    kind = getattr(spec, "kind")
    if kind == "adapter":
        base = getattr(spec, "base")
        return folder_fingerprint(getattr(spec, "path"), parent=folder_fingerprint(getattr(base, "path")))
    return folder_fingerprint(getattr(spec, "path"))
