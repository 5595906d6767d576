"""Forgetting checks declared once, as data, for the pytest tests, the training callback and sweeps.

A :class:`Check` names a capability, the suite it is measured on (a data file and its kind, or
an lm-evaluation-harness task), how the suite is built (``options``: :func:`load_suite` or
:func:`lm_eval_task` keywords), what is measured (``compare``: paired scores against the base,
or ``drift``: label-free KL drift) and how strictly (``tolerance``, ``metric``, ``max_kl``). A
*target* check is the domain being trained: a gain is expected there, and a drop is reported
but is not forgetting. A :class:`CheckSet` is the list, read from a TOML file::

    # tests/forgetting/checks.toml
    [[checks]]
    capability = "knowledge"
    suite = "data/knowledge.jsonl"        # relative to this file
    kind = "multiple_choice"
    tolerance = 0.05

    [[checks]]
    capability = "arithmetic"
    suite = "data/arithmetic.jsonl"
    kind = "generation"
    options = { fewshot = 3, scorer = "numeric", max_new_tokens = 5, stop = ["\\n"] }

    [[checks]]
    capability = "contracts"
    suite = "data/contracts.jsonl"
    kind = "text"
    target = true

``suite = "starter:NAME"`` names a suite shipped with the plugin, and a top-level
``include = ["starter", "other.toml"]`` reads the starter checks (or another checks file,
relative to this one) before this file's own; a check of the same name here replaces the
included one (:mod:`pytest_forgetting.starter`).

and used from a test (the fixture's ``forgetting.run_check(check)``), from
:class:`~pytest_forgetting.training.callback.ForgettingCallback`, or from a script
(``check.run(session, candidate, check.load())``). ``samples`` draws a seeded subset, the same
items every time::

    CHECKS = CheckSet.beside(__file__)

    @CHECKS.marker("knowledge")
    def test_knowledge(forgetting):
        forgetting.run_check(CHECKS["knowledge"])
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Sequence, Union

from pytest_forgetting import starter
from pytest_forgetting.errors import ForgettingError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    from pytest_forgetting.comparison.result import ComparisonResult
    from pytest_forgetting.engine.session import EvaluationSession
    from pytest_forgetting.scoring.suites import Suite

KINDS = ("multiple_choice", "generation", "text", "lm_eval")
MEASURES = ("compare", "drift")
_FIELDS = ("capability", "suite", "kind", "options", "measure", "tolerance", "metric", "max_kl", "target", "name",
           "alpha", "policy")


@dataclass(frozen=True)
class Check:
    """One forgetting check (see the module docstring).

    Attributes:
        capability: the capability it guards, as reports name it.
        suite: the data file (relative to the declaration's folder), a shipped suite
            (``starter:knowledge``) or the lm-eval task name.
        kind: ``multiple_choice``, ``generation``, ``text`` or ``lm_eval``.
        options: keywords for :func:`~pytest_forgetting.scoring.suites.load_suite` (or
            :func:`~pytest_forgetting.harness.tasks.lm_eval_task`).
        measure: ``compare`` (paired scores) or ``drift`` (KL drift; ``max_kl`` is its bound).
        tolerance, metric, alpha, policy: the decision (defaults: the session's and the metric's).
        target: the trained domain: a gain is expected; a drop is reported, not a failure.
        name: a unique name (default: the capability, ``/drift`` added for a drift check).
    """

    capability: str
    suite: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)
    measure: str = "compare"
    tolerance: Union[float, str, None] = None
    metric: Optional[str] = None
    max_kl: Optional[float] = None
    target: bool = False
    name: str = ""
    alpha: Optional[float] = None
    policy: Optional[str] = None
    #: The folder relative data paths start from (a checks file's own folder; None: the working directory).
    root: Optional[Path] = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = f"check {self.name or self.capability!r}"
        if not self.capability or not isinstance(self.capability, str):
            raise ForgettingError(f"{where}: capability must be a non-empty name, e.g. capability = \"knowledge\"")
        if self.kind not in KINDS:
            raise ForgettingError(f"{where}: kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.measure not in MEASURES:
            raise ForgettingError(f"{where}: measure {self.measure!r}; expected compare or drift")
        if self.measure == "drift" and (self.target or self.kind in ("multiple_choice", "lm_eval")):
            raise ForgettingError(f"{where}: drift is measured on a text or generation suite of a general "
                                  "capability; use measure = \"compare\" here")
        if not self.name:
            object.__setattr__(self, "name", self.capability + ("/drift" if self.measure == "drift" else ""))
        if starter.is_starter_suite(self.suite):
            if self.kind == "lm_eval":
                raise ForgettingError(f"{where}: {self.suite!r} is a shipped data file, not an lm-eval task; "
                                      "give its kind (multiple_choice, generation or text)")
            starter.suite_path(self.suite)  # an unknown name fails here, with the shipped names

    def load(self, root: Union[str, "os.PathLike[str]", None] = None, *, samples: Optional[int] = None,
             seed: int = 0) -> "Suite":
        """The suite, with data paths taken from ``root``; ``samples``: a seeded subset of its items."""
        options = dict(self.options)
        if self.kind == "lm_eval":
            from pytest_forgetting.harness.tasks import lm_eval_task

            if samples is not None:
                options.setdefault("samples", samples)
                options.setdefault("seed", seed)
            return lm_eval_task(self.suite, **options)
        from pytest_forgetting.scoring.suites import load_suite

        if starter.is_starter_suite(self.suite):
            path = starter.suite_path(self.suite)
        else:
            path = Path(os.path.expanduser(self.suite))
            root = root if root is not None else self.root
            if root is not None and not path.is_absolute():
                path = Path(root) / path
        if not path.exists():
            raise ForgettingError(f"check {self.name!r}: suite file {path} does not exist; give its path relative "
                                  "to the checks file (or absolute)")
        suite = load_suite(path, self.kind, **options)
        return sample(suite, samples, seed) if samples is not None else suite

    def run(self, session: "EvaluationSession", candidate: Any, suite: "Suite", *, test: str = "",
            record: bool = True) -> "ComparisonResult":
        """Decide this check for ``candidate`` (a label or slot of ``session``) on ``suite`` (from :meth:`load`)."""
        if self.measure == "drift":
            result = session.drift(candidate, suite, max_kl=self.max_kl, capability=self.capability, test=test,
                                   alpha=self.alpha, record=record)
        else:
            result = session.compare(candidate, suite, capability=self.capability, metric=self.metric,
                                     tolerance=self.tolerance, policy=self.policy, alpha=self.alpha, test=test,
                                     record=record)
        if self.target:
            result.extra["target"] = True
        return result


def sample(suite: "Suite", n: int, seed: int = 0) -> "Suite":
    """``n`` of ``suite``'s items drawn with ``seed`` (kept in file order), the same ones every time."""
    if n < 1:
        raise ForgettingError(f"samples={n}: expected a positive number of items per check")
    if n >= len(suite):
        return suite
    chosen = sorted(random.Random(seed).sample(range(len(suite)), n))
    return dataclasses.replace(suite, items=tuple(suite.items[i] for i in chosen))


class CheckSet:
    """The checks of a project, with the folder their data paths are relative to.

    Args:
        checks: the checks; names must be unique.
        root: the folder relative data paths start from (a checks file's own folder).
    """

    def __init__(self, checks: Sequence[Check], root: Union[str, "os.PathLike[str]", None] = None) -> None:
        self.root = Path(root) if root is not None else Path.cwd()
        self.checks = tuple(c if c.root is not None else dataclasses.replace(c, root=self.root) for c in checks)
        names = [check.name for check in self.checks]
        for name in names:
            if names.count(name) > 1:
                raise ForgettingError(f"checks: two checks are named {name!r}; give one of them name = \"...\"")
        if not self.checks:
            raise ForgettingError("checks: none declared; add [[checks]] entries (capability, suite, kind)")
        if self.targets() and not self.general():
            raise ForgettingError(f"checks: only target capabilities ({', '.join(c.capability for c in self.targets())}); "
                                  "forgetting is measured on general capabilities: add at least one check with "
                                  "target = false (e.g. knowledge or arithmetic)")

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"]) -> "CheckSet":
        """Read a TOML file of ``[[checks]]`` tables (see the module docstring)."""
        return cls(_read_checks(Path(path), ()), root=Path(path).parent)

    @classmethod
    def starter(cls) -> "CheckSet":
        """The starter checks: general capabilities on the suites shipped with the plugin."""
        return cls.from_file(starter.checks_file())

    @classmethod
    def coerce(cls, value: Union["CheckSet", Sequence[Check], str, "os.PathLike[str]"]) -> "CheckSet":
        """A :class:`CheckSet` from itself, a list of checks, or a checks file's path."""
        if isinstance(value, CheckSet):
            return value
        if isinstance(value, (str, os.PathLike)):
            return cls.from_file(value)
        return cls(list(value))

    @classmethod
    def beside(cls, test_file: Union[str, "os.PathLike[str]"], name: str = "checks.toml") -> "CheckSet":
        """The checks file next to a test file (``CheckSet.beside(__file__)``)."""
        return cls.from_file(Path(test_file).resolve().parent / name)

    def marker(self, name: str) -> Any:
        """The ``capability`` marker of check ``name``: its capability, tolerance, policy, alpha, metric and
        whether it is a target, so that ``--capability`` selects it and the reports treat it as declared."""
        from pytest_forgetting.markers import capability

        check = self[name]
        return capability(check.capability, tolerance=check.tolerance, policy=check.policy, alpha=check.alpha,
                          metric=check.metric, target=check.target)

    def general(self) -> list[Check]:
        """The checks of general capabilities (where a drop is forgetting)."""
        return [check for check in self.checks if not check.target]

    def targets(self) -> list[Check]:
        """The checks of the trained domain."""
        return [check for check in self.checks if check.target]

    def select(self, names: Optional[Sequence[str]]) -> "CheckSet":
        """Only the checks named (by name or capability); None: all of them."""
        if names is None:
            return self
        known = {check.name for check in self.checks} | {check.capability for check in self.checks}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ForgettingError(f"checks: no check named {', '.join(map(repr, unknown))}; declared: "
                                  f"{', '.join(check.name for check in self.checks)}")
        return CheckSet([c for c in self.checks if c.name in names or c.capability in names], self.root)

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise ForgettingError(f"checks: no check named {name!r}; declared: {', '.join(c.name for c in self.checks)}")

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)


def _read_checks(path: Path, reading: tuple[Path, ...]) -> list[Check]:
    """The checks of one file, those it includes first (``reading``: the files including it)."""
    if path.resolve() in reading:
        raise ForgettingError(f"checks file {path}: includes itself through {' -> '.join(map(str, reading))}; "
                              "remove the cycle from include = [...]")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ForgettingError(f"checks file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ForgettingError(f"checks file {path}: not valid TOML ({exc})") from None
    unknown_keys = sorted(set(data) - {"checks", "include"})
    if unknown_keys:
        raise ForgettingError(f"checks file {path}: unknown top-level keys {', '.join(unknown_keys)}; "
                              "expected [[checks]] tables and an optional include = [...]")
    included: list[Check] = []
    for name in _includes(path, data.get("include", [])):
        target = starter.checks_file() if name == starter.STARTER else path.parent / name
        included += _read_checks(target, (*reading, path.resolve()))
    entries = data.get("checks", [] if included else None)
    if not isinstance(entries, list):
        raise ForgettingError(f"checks file {path}: expected [[checks]] tables with capability, suite and kind")
    checks = []
    for number, entry in enumerate(entries, 1):
        unknown = sorted(set(entry) - set(_FIELDS))
        missing = [key for key in ("capability", "suite", "kind") if key not in entry]
        if unknown or missing:
            problem = f"unknown keys {', '.join(unknown)}" if unknown else f"missing {', '.join(missing)}"
            raise ForgettingError(f"checks file {path}: check {number} ({entry.get('capability', '?')}): {problem}; "
                                  f"keys are {', '.join(_FIELDS)}")
        checks.append(Check(**entry, root=path.parent))
    own = {check.name: check for check in checks}
    replaced = [own.pop(check.name, check) for check in included]  # this file's check of the same name wins
    return replaced + [check for check in checks if check.name in own]


def _includes(path: Path, value: Any) -> list[str]:
    """The ``include`` list of a checks file, checked."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
        raise ForgettingError(f"checks file {path}: include = {value!r}; expected a list of checks files "
                              "relative to this one, or \"starter\" for the shipped starter checks")
    return value
