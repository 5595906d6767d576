"""The one result type: a capability's scores, statistics and verdict for one candidate.

Reports, JUnit properties, the hooks and the Python API all read these typed fields;
``to_dict`` is the JSON form (strict JSON: a non-finite number is written as null), and
``from_dict`` rebuilds a result from it (e.g. what an xdist worker sent).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

from pytest_forgetting.comparison.decision import format_level
from pytest_forgetting.scoring.metrics import format_amount


@dataclass
class ComparisonResult:
    """Everything known about one capability's comparison of a candidate against the base.

    ``delta = tuned_score - base_score`` (for lower-is-better metrics such as NLL a
    positive delta is worse). ``ci_low``/``ci_high`` bound delta at level ``1 - 2 test_alpha``
    two-sided, i.e. each side is a one-sided ``1 - test_alpha`` bound; ``test_alpha`` is
    ``alpha`` (or ``alpha / family_size`` under the ``significant`` policy).
    """

    capability: str
    suite: str
    metric: str
    higher_is_better: bool
    n: int
    base_score: float
    tuned_score: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    mde: float
    forgotten: int
    gained: int
    tolerance: str
    tolerance_abs: float
    policy: str
    alpha: float
    verdict: str
    statistic: str
    underpowered: bool
    base_model: str = ""
    tuned_model: str = ""
    #: The candidate's label in reports and test ids (``careful``, ``checkpoint-500``).
    candidate: str = ""
    #: The metric's declaration: 0/1 scores, and the unit a tolerance is read in.
    binary: bool = False
    unit: str = ""
    #: The level the interval and MDE were computed at (``alpha / m`` under ``significant``).
    test_alpha: float = 0.05
    forgotten_items: list[dict[str, Any]] = field(default_factory=list)
    gained_items: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)
    base_values: list[float] = field(default_factory=list, repr=False)
    tuned_values: list[float] = field(default_factory=list, repr=False)
    clusters: Optional[list[str]] = field(default=None, repr=False)
    family_size: int = 1
    #: Paired standard error of delta (Miller 2024; clustered when items carry clusters).
    se: float = float("nan")
    #: Holm's step-down correction across the candidate's ``significant`` results (set at the end).
    holm_p: Optional[float] = None
    holm_verdict: Optional[str] = None
    #: The test (pytest node id) or check that produced the result.
    test: str = ""
    #: Sequential verdicts: items in the suite (``n`` is fewer when the verdict came early),
    #: and the look it came at, of ``looks``. All 0 when verdicts are not sequential.
    suite_size: int = 0
    look: int = 0
    looks: int = 0

    @property
    def passed(self) -> bool:
        """True when the verdict is ``pass`` (Holm's correction aside)."""
        return self.verdict == "pass"

    @property
    def failed_by_holm(self) -> bool:
        """True when the test's own verdict passed but Holm's correction across capabilities fails it."""
        return self.passed and self.holm_verdict == "fail"

    @property
    def is_target(self) -> bool:
        """True for a target capability's result (``@capability(name, target=True)``: the domain being
        trained, where a gain is expected): its drop is reported but fails no test."""
        return bool(self.extra.get("target"))

    @property
    def kept(self) -> bool:
        """True when a general capability held: its verdict passes and Holm's correction does not fail it.

        Never true for a target's result: a target is not a capability the tuning must keep.
        """
        return self.passed and not self.failed_by_holm and not self.is_target

    @property
    def decided_early(self) -> bool:
        """True when a sequential verdict was reached before every item was scored."""
        return 0 < self.n < self.suite_size

    @property
    def items_text(self) -> str:
        """``314``, or ``96 of 314`` when a sequential verdict came early."""
        return f"{self.n} of {self.suite_size}" if self.decided_early else str(self.n)

    @property
    def sequential_text(self) -> str:
        """``decided after 96 of 314 items (look 3 of 8)`` (empty when not sequential)."""
        if not self.looks:
            return ""
        from pytest_forgetting.comparison.sequential import decided_text

        return decided_text(self.n, self.suite_size, self.look, self.looks)

    @property
    def worst_case_drop(self) -> float:
        """The one-sided ``1 - test_alpha`` bound on how much worse tuned is (positive = worse)."""
        return -self.ci_low if self.higher_is_better else self.ci_high

    @property
    def observed_drop(self) -> float:
        """How much worse tuned scored on average (positive = worse)."""
        return -self.delta if self.higher_is_better else self.delta

    @property
    def level(self) -> str:
        """The one-sided confidence of the interval's bounds, e.g. ``95%`` or ``98.75%``."""
        return format_level(self.test_alpha)

    def amount(self, value: float) -> str:
        """``value`` in the metric's unit (``0.050 (5.0 points)``, ``0.050 nats/token``)."""
        return format_amount(value, self.unit)

    def summary_line(self) -> str:
        """One line: verdict, capability, scores, delta with its bound, and the tolerance."""
        arrow = "" if self.higher_is_better else " (lower is better)"
        bound = self.ci_low if self.higher_is_better else self.ci_high
        side = "lower" if self.higher_is_better else "upper"
        return (
            f"{self.verdict.upper()} {self.capability}: {self.metric}{arrow} "
            f"{self.base_score:.3f} -> {self.tuned_score:.3f} (delta {self.delta:+.3f}, "
            f"{self.level} {side} bound {bound:+.3f}; tolerance {self.amount(self.tolerance_abs)}, "
            f"{self.policy}; n={self.items_text}, forgotten {self.forgotten}, gained {self.gained})"
        )

    def to_dict(self, *, records: bool = True) -> dict[str, Any]:
        """Strict-JSON-ready dict (per-item records included unless ``records=False``)."""
        data = asdict(self)
        for key in ("base_values", "tuned_values", "clusters"):
            data.pop(key)
        if not records:
            data.pop("records")
        return finite(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ComparisonResult":
        """Rebuild a result from :meth:`to_dict` output (null numbers come back as NaN or +-inf)."""
        known = {f.name: f for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("ci_low",):
            if values.get(key) is None:
                values[key] = -math.inf
        for key in ("ci_high", "mde"):
            if values.get(key) is None:
                values[key] = math.inf
        for key in ("se", "p_value", "base_score", "tuned_score", "delta"):
            if key in values and values[key] is None:
                values[key] = math.nan
        return cls(**values)


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (strict JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
