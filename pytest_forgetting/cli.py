"""The ``pytest-forgetting`` command (also ``python -m pytest_forgetting``).

Checks themselves run under pytest (``pytest tests/forgetting --tuned-model=PATH``); this
command holds what happens outside a test run:

* ``init``: start forgetting checks in a repository (:mod:`pytest_forgetting.starter.scaffold`).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

USAGE = "usage: pytest-forgetting init [--adapter PATH] [--base-model ID] [--root DIR] [--dry-run]"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a subcommand; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + (__doc__ or "").strip())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "init":
        from pytest_forgetting.starter.scaffold import run

        return run(rest)
    print(f"pytest-forgetting: unknown command {command!r}; expected init ({USAGE})", file=sys.stderr)
    return 2
