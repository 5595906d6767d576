"""Declared metrics: every score says its direction, whether it is 0/1, its range and its unit.

The comparison picks its statistic from the declaration, never from the data: a binary
metric is compared as paired proportions (Tango interval, McNemar), a continuous one with a
paired bootstrap, whatever values happen to occur. A tolerance is read and shown in the
metric's unit, and the default tolerance is the metric's own. A value that is NaN, not a
number, outside the declared range, or not 0/1 for a binary metric fails with the suite,
the item and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.tolerance import Tolerance

#: Units measured as a share of something (0..1): ``--forgetting-tolerance`` sets their default.
SHARE_UNITS = ("share of items", "share of outputs", "share of tokens")


@dataclass(frozen=True)
class Metric:
    """What a metric's values mean.

    Attributes:
        name: the metric's name in reports (``acc``, ``nll``, a scorer's name).
        higher_is_better: the direction of "better".
        binary: every value is 0 or 1 (right or wrong): paired proportions decide.
        unit: what one unit of the metric is, e.g. ``"share of items"`` or ``"nats/token"``.
        low, high: the declared range of a per-item value (``math.inf`` for unbounded).
        default_tolerance: the allowed drop when no tolerance is given, in ``unit``.
        description: one line for reports, saying exactly what is averaged.
        aggregate: for a corpus metric (an lm-eval ``f1``, ``bleu`` or perplexity), the function
            of all documents' raw values that gives the score; None for a per-item mean.
    """

    name: str
    higher_is_better: bool = True
    binary: bool = False
    unit: str = "share of outputs"
    low: float = 0.0
    high: float = 1.0
    default_tolerance: Tolerance = Tolerance(0.02)
    description: str = ""
    aggregate: Optional[Callable[[Sequence[Any]], float]] = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.low < self.high) or math.isnan(self.low) or math.isnan(self.high):
            raise ForgettingError(f"metric {self.name!r}: range [{self.low}, {self.high}] is empty; give low < high")
        if self.binary and (self.low, self.high) != (0.0, 1.0):
            raise ForgettingError(f"metric {self.name!r}: a binary metric scores 0 or 1; its range must be [0, 1]")

    @property
    def is_share(self) -> bool:
        """True when the unit is a share (accuracy-like): 0.05 reads as 5 points."""
        return self.unit in SHARE_UNITS

    def amount(self, value: float) -> str:
        """``value`` in this metric's unit: ``0.050 (5.0 points)`` or ``0.050 nats/token``."""
        return format_amount(value, self.unit)

    def checked(self, value: Any, *, suite: str, item: str, source: str) -> float:
        """``value`` as a float, or a one-line error when it is not a valid score of this metric."""
        bad = value is None or isinstance(value, bool) or not isinstance(value, (int, float))
        number = math.nan if bad else float(value)
        if bad or math.isnan(number):
            raise ForgettingError(
                f"suite {suite}, item {item!r}: {source} returned {value!r}; expected a number in "
                f"[{_bound(self.low)}, {_bound(self.high)}] ({self.name}'s declared range)"
            )
        if not self.low <= number <= self.high:
            raise ForgettingError(
                f"suite {suite}, item {item!r}: {source} returned {number!r}, outside "
                f"[{_bound(self.low)}, {_bound(self.high)}] ({self.name}'s declared range); fix the "
                "scorer or declare its range"
            )
        if self.binary and number not in (0.0, 1.0):
            raise ForgettingError(
                f"suite {suite}, item {item!r}: {source} returned {number!r}, but {self.name} is declared "
                "binary (0 or 1); declare it binary=False to compare it as a continuous score"
            )
        return number


def format_amount(value: float, unit: str) -> str:
    """An amount of a metric in ``unit``: a share as points (``0.050 (5.0 points)``), else ``0.050 nats/token``."""
    if unit in SHARE_UNITS:
        return f"{value:.3f} ({value * 100:.1f} points)"
    return f"{value:.3f} {unit}".rstrip()


def _bound(value: float) -> str:
    return "inf" if value == math.inf else "-inf" if value == -math.inf else f"{value:g}"


ACC = Metric("acc", binary=True, unit="share of items",
             description="accuracy: the most likely choice (summed log-likelihood) is the gold one")
ACC_NORM = Metric("acc_norm", binary=True, unit="share of items",
                  description="accuracy with each choice's log-likelihood divided by its length in characters")
NLL = Metric("nll", higher_is_better=False, unit="nats/token", high=math.inf, default_tolerance=Tolerance(0.05),
             description="mean over items of each item's mean token negative log-likelihood (the report's "
                         "perplexity is token-weighted over all items)")
KL = Metric("kl", higher_is_better=False, unit="nats/token", high=math.inf, default_tolerance=Tolerance(0.1),
            description="mean over items of each item's mean token KL(base || tuned)")
SHIFT_RATE = Metric("shift_rate", higher_is_better=False, unit="share of tokens", default_tolerance=Tolerance(0.1),
                    description="mean over items of the share of tokens outside the base's top 3")

#: The built-in metrics of multiple-choice, text and drift suites, by name.
BUILTIN = {metric.name: metric for metric in (ACC, ACC_NORM, NLL, KL, SHIFT_RATE)}


def default_tolerance(metric: Metric, session_default: Optional[Tolerance]) -> Tolerance:
    """The tolerance a comparison uses when neither the call nor the marker gives one.

    The session default (``--forgetting-tolerance``) applies to share metrics (accuracy
    points) and, when relative (``"5%"``), to every metric; other units use the metric's own.
    """
    if session_default is not None and (metric.is_share or session_default.relative):
        return session_default
    return metric.default_tolerance
