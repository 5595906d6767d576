"""The one exception type the plugin raises for problems a user can fix."""

from __future__ import annotations


class ForgettingError(Exception):
    """A user-fixable problem: bad input, a missing file, a mismatched model pair.

    The message is one line that says what was wrong, what was expected and how to fix
    it. The plugin shows it without a traceback.
    """


class ForgettingDetected(AssertionError):
    """A forgetting check failed. Its message starts with the one-line verdict.

    The plugin reports it without a traceback, so the terminal and JUnit XML's failure
    message show the verdict, the numbers and the forgotten items first.
    """
