"""The starter suites: general-capability data shipped with the plugin, usable by name.

A fine-tune most often loses what it was not trained on: facts, arithmetic, grammar, following
a format, everyday writing. The plugin ships one suite of each (authored for this project;
sizes, tolerances and measured scores in ``data/README.md``) and a checks file over them
(``checks.toml``), so a repository can guard them before it has data of its own:

* in a checks file, ``suite = "starter:knowledge"`` names a shipped suite, and
  ``include = ["starter"]`` adds the starter checks before the file's own;
* in code, :func:`suite_path` gives a shipped suite's file (``forgetting.suite(suite_path(
  "arithmetic"), "generation", ...)``);
* ``pytest-forgetting init`` (:mod:`pytest_forgetting.starter.scaffold`) writes a copy of the
  starter checks into a repository's ``tests/forgetting/``, to edit there.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from pytest_forgetting.errors import ForgettingError

#: How a checks file names a shipped suite (``starter:knowledge``) or the starter checks (``starter``).
PREFIX = "starter:"
STARTER = "starter"
#: The shipped suites, by name.
NAMES = ("knowledge", "language", "arithmetic", "instructions", "writing")
FOLDER = Path(__file__).resolve().parent


def suite_path(name: str) -> Path:
    """The data file of the shipped suite ``name`` (one of :data:`NAMES`; ``starter:`` may lead)."""
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if bare not in NAMES:
        close = difflib.get_close_matches(bare, NAMES, n=1)
        hint = f"did you mean {PREFIX}{close[0]}? " if close else ""
        raise ForgettingError(f"starter suite {bare!r} does not exist; {hint}shipped suites are "
                              f"{', '.join(PREFIX + n for n in NAMES)}")
    return FOLDER / "data" / f"{bare}.jsonl"


def is_starter_suite(reference: str) -> bool:
    """Whether a checks file's ``suite`` names a shipped suite (``starter:NAME``)."""
    return isinstance(reference, str) and reference.startswith(PREFIX)


def checks_file() -> Path:
    """The starter checks file (``include = ["starter"]`` in a checks file reads it)."""
    return FOLDER / "checks.toml"
