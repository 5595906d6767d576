"""Committed baselines: the base model's per-item results, kept in the adapter's repo.

``--forgetting-update-baseline`` writes, per suite, a JSON file into the baseline folder
(``--forgetting-baseline DIR``) with the base model's fingerprint, dtype, device type, the
scoring environment (library versions and device name, see
:func:`~pytest_forgetting.storage.cache.scoring_environment`) and per-item results. Later
runs read it instead of scoring the base model, provided the fingerprint, dtype, device type
and settings match; a mismatch fails with a message that says how to update.

A baseline recorded with other library versions or on another device model still loads (a
committed baseline is meant to serve CI runners and laptops alike, and such differences move
scores by float noise, not by what a tolerance is about): the difference becomes a notice in
the terminal and in ``report.json`` (``notices``), saying how to re-record.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from pytest_forgetting import __version__
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.storage.cache import (digest, locked, read_entries, remove_stale_temporaries,
                                             scoring_environment, suite_settings, write_entries, write_failure)


def settings_key(suite: Any) -> str:
    """Identity of a suite's scoring settings, independent of the model."""
    return digest({"plugin": __version__, **suite_settings(suite)})[:12]


class Baseline:
    """The baseline folder: one checksummed JSON file per suite and settings.

    Attributes:
        notices: one line per baseline file read that was recorded in another scoring
            environment (library versions, device name) than this run's.
    """

    def __init__(self, folder: Path, *, update: bool = False) -> None:
        self.folder = Path(folder)
        self.update = update
        self.notices: list[str] = []

    def file_for(self, suite: Any) -> Path:
        """Where ``suite``'s baseline lives."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in suite.name)
        return self.folder / f"{safe}-{settings_key(suite)}.json"

    def entries(self, suite: Any, identity: tuple[str, str, str], model: str) -> Optional[dict[str, Any]]:
        """The stored per-item base results, None if there is no baseline for this suite.

        Raises ForgettingError when the baseline was recorded for another base model, dtype
        or device type (unless updating). Another scoring environment adds a notice.
        """
        path = self.file_for(suite)
        if self.update or not path.exists():
            return None
        try:
            header = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            header = {}
        entries = read_entries(path)
        if not entries or not isinstance(header, dict):
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
        self._note_environment(path, header, device)
        return entries

    def _note_environment(self, path: Path, header: dict[str, Any], device: str) -> None:
        """A notice when the file was recorded with other library versions or on another device model."""
        if "environment" not in header:  # recorded before environments were kept: nothing to compare
            return
        notice = environment_difference(path.name, header.get("environment") or {}, scoring_environment(device))
        if notice and notice not in self.notices:
            self.notices.append(notice)
            from pytest_forgetting.scoring import progress

            progress.notify(f"notice: {notice}")

    def write(self, suite: Any, identity: tuple[str, str, str], model: str, entries: dict[str, Any]) -> Path:
        """Record ``entries`` (every item of ``suite``) as the baseline (locked, atomic).

        Raises ForgettingError, one line, when the folder cannot be written (a full disk, no permission).
        """
        fingerprint, dtype, device = identity
        path = self.file_for(suite)
        try:
            with locked(path):
                remove_stale_temporaries(path)
                write_entries(path, entries, model=model, fingerprint=fingerprint, dtype=dtype, device=device,
                              environment=scoring_environment(device), suite=suite.name, kind=suite.kind,
                              items=len(entries), plugin=__version__,
                              created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        except OSError as exc:
            raise ForgettingError(write_failure(f"the baseline {path.name}", path.parent, exc,
                                                "point --forgetting-baseline at a writable folder")) from None
        return path


def environment_difference(name: str, recorded: dict[str, Any], current: dict[str, Any]) -> Optional[str]:
    """One line naming what differs between a baseline's recorded environment and this run's, or None."""
    changes = []
    before, now = recorded.get("libraries") or {}, current.get("libraries") or {}
    for library in sorted(set(before) | set(now)):
        if before.get(library) != now.get(library):
            changes.append(f"{library} {before.get(library) or 'absent'} (this run: {now.get(library) or 'absent'})")
    if recorded.get("device_name") != current.get("device_name"):
        changes.append(f"device {recorded.get('device_name')!r} (this run: {current.get('device_name')!r})")
    if not changes:
        return None
    return (f"baseline {name} was recorded with {', '.join(changes)}; its base scores are used as recorded "
            "(they may differ from a fresh run by float noise); re-record it here with "
            "--forgetting-update-baseline to match this machine")

