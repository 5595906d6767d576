"""Progress of long scoring runs, shown without breaking pytest's output capture."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

#: The sink the plugin installs for a session: writes a line to the real terminal.
_sink: Optional[Callable[[str], None]] = None
MIN_INTERVAL_S = 2.0


def set_sink(sink: Optional[Callable[[str], None]]) -> None:
    """Install (or remove, with None) where progress lines go."""
    global _sink
    _sink = sink


def notify(line: str) -> None:
    """A one-line notice for the person running the session (the terminal under pytest, else stderr)."""
    text = f"[forgetting] {line}"
    if _sink is not None:
        _sink(text)
    else:
        sys.stderr.write(text + "\n")


class Progress:
    """Counts items done for one capability and model; prints at most every 2 seconds."""

    def __init__(self, label: str, total: int, stream: Optional[TextIO] = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream
        self._started = time.monotonic()
        self._last = 0.0

    def advance(self, count: int) -> None:
        """Record ``count`` more items done and maybe print a line."""
        self.done += count
        now = time.monotonic()
        if self.done >= self.total or now - self._last >= MIN_INTERVAL_S:
            self._last = now
            elapsed = now - self._started
            rate = self.done / elapsed if elapsed > 0 else 0.0
            self._emit(f"[forgetting] {self.label}: {self.done}/{self.total} items ({rate:.1f}/s)")

    def _emit(self, line: str) -> None:
        if self._stream is not None:
            self._stream.write(line + "\n")
        elif _sink is not None:
            _sink(line)
        elif sys.__stderr__ is not None and sys.__stderr__.isatty():
            sys.__stderr__.write(line + "\n")
