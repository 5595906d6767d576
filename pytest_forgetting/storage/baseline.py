"""Committed baselines: the base model's per-item results, kept in the adapter's repo.

``--forgetting-update-baseline`` writes, per suite, a JSON file into the baseline folder
(``--forgetting-baseline DIR``) with the base model's fingerprint, dtype, device type and
per-item results. Later runs read it instead of scoring the base model, provided the
fingerprint and settings match; a mismatch fails with a message that says how to update.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from pytest_forgetting import __version__
from pytest_forgetting.storage.cache import digest, read_entries, suite_settings, write_entries
from pytest_forgetting.errors import ForgettingError


def settings_key(suite: Any) -> str:
    """Identity of a suite's scoring settings, independent of the model."""
    return digest({"plugin": __version__, **suite_settings(suite)})[:12]


class Baseline:
    """The baseline folder: one checksummed JSON file per suite and settings."""

    def __init__(self, folder: Path, *, update: bool = False) -> None:
        self.folder = Path(folder)
        self.update = update

    def file_for(self, suite: Any) -> Path:
        """Where ``suite``'s baseline lives."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in suite.name)
        return self.folder / f"{safe}-{settings_key(suite)}.json"

    def entries(self, suite: Any, identity: tuple[str, str, str], model: str) -> Optional[dict[str, Any]]:
        """The stored per-item base results, None if there is no baseline for this suite.

        Raises ForgettingError when the baseline was recorded for another base model, dtype
        or device type (unless updating).
        """
        path = self.file_for(suite)
        if self.update or not path.exists():
            return None
        try:
            header = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            header = {}
        entries = read_entries(path)
        if not entries:
            raise ForgettingError(
                f"baseline {path} is corrupt or incomplete; re-record it with --forgetting-update-baseline"
            )
        fingerprint, dtype, device = identity
        recorded = (header.get("fingerprint"), header.get("dtype"), header.get("device"))
        if recorded != identity:
            what = ("base model" if recorded[0] != fingerprint else
                    "dtype" if recorded[1] != dtype else "device type")
            raise ForgettingError(
                f"baseline {path.name} was recorded for another {what} ({header.get('model')}, "
                f"{recorded[1]}, {recorded[2]}, fingerprint {str(recorded[0])[:12]}); this run uses "
                f"{model}, {dtype}, {device}, fingerprint {fingerprint[:12]}: re-record it with "
                "--forgetting-update-baseline (and commit the folder)"
            )
        return entries

    def write(self, suite: Any, identity: tuple[str, str, str], model: str, entries: dict[str, Any]) -> Path:
        """Record ``entries`` (every item of ``suite``) as the baseline."""
        fingerprint, dtype, device = identity
        path = self.file_for(suite)
        write_entries(path, entries, model=model, fingerprint=fingerprint, dtype=dtype, device=device,
                      suite=suite.name, kind=suite.kind, items=len(entries), plugin=__version__,
                      created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        return path
