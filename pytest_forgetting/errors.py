"""The one exception type the plugin raises for problems a user can fix."""

from __future__ import annotations


class ForgettingError(Exception):
    """A user-fixable problem: bad input, a missing file, a mismatched model pair.

    The message is one line that says what was wrong, what was expected and how to fix
    it. The plugin shows it without a traceback.
    """
