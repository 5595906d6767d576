"""Paired comparison of base and tuned scores on the same items, and the verdict.

Non-inferiority (the default policy) passes when the one-sided ``1 - alpha`` bound of the
drop is within tolerance, or when no item got worse at all: a suite too small to prove
non-inferiority does not fail a tuned model that forgot nothing (it is flagged as
underpowered instead).

Binary metrics (every score 0 or 1: accuracy, exact match) use paired proportions:
the Tango score interval for non-inferiority and McNemar's mid-p for significance
(``../shared/RESEARCH.md`` section 2). Continuous metrics (NLL, ROUGE, KL) use a seeded
paired bootstrap over items (Koehn 2004).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional, Sequence

from pytest_forgetting.comparison import stats
from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.markers import POLICIES
from pytest_forgetting.tolerance import Tolerance, ToleranceLike, parse_tolerance

DEFAULT_TOLERANCE = Tolerance(0.02)
DEFAULT_ALPHA = 0.05
DEFAULT_POLICY = "non-inferiority"
#: Forgotten items kept in a result (the rest are counted, not listed).
MAX_LISTED = 50


@dataclass(frozen=True)
class Decision:
    """How a comparison is decided."""

    tolerance: Tolerance = DEFAULT_TOLERANCE
    policy: str = DEFAULT_POLICY
    alpha: float = DEFAULT_ALPHA
    family_size: int = 1  # capabilities decided together under "significant" (Bonferroni)


@dataclass
class ComparisonResult:
    """Everything known about one capability's comparison of tuned against base.

    ``delta = tuned_score - base_score`` (for lower-is-better metrics such as NLL a
    positive delta is worse). ``ci_low``/``ci_high`` bound delta at level ``1 - 2 alpha``
    two-sided, i.e. each side is a one-sided ``1 - alpha`` bound.
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

    @property
    def passed(self) -> bool:
        """True when the verdict is ``pass``."""
        return self.verdict == "pass"

    @property
    def worst_case_drop(self) -> float:
        """The one-sided ``1 - alpha`` bound on how much worse tuned is (positive = worse)."""
        return -self.ci_low if self.higher_is_better else self.ci_high

    def summary_line(self) -> str:
        """One line: verdict, capability, scores, delta with its bound, and the tolerance."""
        arrow = "" if self.higher_is_better else " (lower is better)"
        bound = self.ci_low if self.higher_is_better else self.ci_high
        side = "lower" if self.higher_is_better else "upper"
        return (
            f"{self.verdict.upper()} {self.capability}: {self.metric}{arrow} "
            f"{self.base_score:.3f} -> {self.tuned_score:.3f} (delta {self.delta:+.3f}, "
            f"{int(round((1 - self.alpha) * 100))}% {side} bound {bound:+.3f}; tolerance "
            f"{self.tolerance_abs:.3f}, {self.policy}; n={self.n}, forgotten {self.forgotten}, "
            f"gained {self.gained})"
        )

    def redecide(self, decision: Decision) -> "ComparisonResult":
        """The same scores decided with another tolerance, policy or alpha."""
        return decide(self.base_values, self.tuned_values, decision, template=self)

    def to_dict(self, *, records: bool = True) -> dict[str, Any]:
        """JSON-ready dict (per-item records included unless ``records=False``)."""
        data = asdict(self)
        for key in ("base_values", "tuned_values", "clusters"):
            data.pop(key)
        if not records:
            data.pop("records")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ComparisonResult":
        """Rebuild a result from :meth:`to_dict` output (e.g. from an xdist worker)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def resolve_decision(
    *,
    tolerance: Optional[ToleranceLike] = None,
    policy: Optional[str] = None,
    alpha: Optional[float] = None,
    family_size: int = 1,
) -> Decision:
    """A validated :class:`Decision` from optional parts (defaults fill the rest)."""
    if policy is not None and policy not in POLICIES:
        raise ForgettingError(f"unknown policy {policy!r}; expected one of: {', '.join(POLICIES)}")
    if alpha is not None and not 0 < alpha < 1:
        raise ForgettingError(f"alpha must be between 0 and 1, got {alpha!r}")
    return Decision(
        tolerance=DEFAULT_TOLERANCE if tolerance is None else parse_tolerance(tolerance),
        policy=policy or DEFAULT_POLICY,
        alpha=DEFAULT_ALPHA if alpha is None else float(alpha),
        family_size=max(1, family_size),
    )


def is_binary(values: Sequence[float]) -> bool:
    """True when every value is 0 or 1."""
    return all(v in (0.0, 1.0) for v in values)


def decide(
    base_values: Sequence[float],
    tuned_values: Sequence[float],
    decision: Decision,
    *,
    template: ComparisonResult,
    seed: int = 0,
) -> ComparisonResult:
    """Compute paired statistics and the verdict; copy descriptive fields from ``template``."""
    if len(base_values) != len(tuned_values) or not base_values:
        raise ForgettingError(
            f"{template.capability}: base and tuned have {len(base_values)} and "
            f"{len(tuned_values)} scores; a paired comparison needs the same non-empty items"
        )
    higher = template.higher_is_better
    base_mean = sum(base_values) / len(base_values)
    tolerance_abs = decision.tolerance.absolute(base_mean)
    # Under "significant", each of the family's capabilities is tested at alpha / m (Bonferroni,
    # the first Holm step); the session summary reports Holm-adjusted p-values across them.
    test_alpha = decision.alpha / decision.family_size if decision.policy == "significant" else decision.alpha
    if is_binary(base_values) and is_binary(tuned_values) and higher:
        result = stats.paired_binary(base_values, tuned_values, alpha=test_alpha, clusters=template.clusters)
        low, high, p_value, mde, se = result.ci_low, result.ci_high, result.p_value, result.mde, result.se
        statistic = f"paired proportions ({result.interval_method} interval, McNemar mid-p)"
        if decision.policy == "non-inferiority":
            passed = stats.non_inferior(result, tolerance_abs) or result.forgotten == 0
        else:
            passed = not stats.significant_regression(result, tolerance_abs, test_alpha)
    else:
        result_c = stats.paired_bootstrap(base_values, tuned_values, alpha=test_alpha, seed=seed,
                                          higher_is_better=higher)
        low, high, p_value, mde = result_c.ci_low, result_c.ci_high, result_c.p_value, result_c.mde
        se = stats.paired_se(base_values, tuned_values)
        statistic = f"paired bootstrap (B={result_c.n_resamples}, seed={seed})"
        if decision.policy == "non-inferiority":
            nothing_worse = all((t >= b) if higher else (t <= b) for b, t in zip(base_values, tuned_values))
            passed = stats.non_inferior_continuous(result_c, tolerance_abs) or nothing_worse
        else:
            passed = not (p_value < test_alpha and result_c.observed_drop > tolerance_abs)
    sign = 1.0 if higher else -1.0
    drops = [sign * (b - t) for b, t in zip(base_values, tuned_values)]
    forgotten = sum(1 for d in drops if d > 0)
    gained = sum(1 for d in drops if d < 0)
    worst_first = sorted(range(len(drops)), key=lambda i: (-drops[i], i))
    best_first = sorted(range(len(drops)), key=lambda i: (drops[i], i))
    return replace(
        template,
        n=len(base_values),
        base_score=base_mean,
        tuned_score=sum(tuned_values) / len(tuned_values),
        delta=sum(tuned_values) / len(tuned_values) - base_mean,
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(p_value),
        mde=float(mde),
        forgotten=forgotten,
        gained=gained,
        tolerance=str(decision.tolerance),
        tolerance_abs=float(tolerance_abs),
        policy=decision.policy,
        alpha=decision.alpha,
        verdict="pass" if passed else "fail",
        statistic=statistic,
        # Too small to detect the tolerance, and the interval straddles it: inconclusive. An
        # interval wholly on one side (a clear drop, or proven within tolerance) is conclusive.
        underpowered=bool(mde > tolerance_abs and (low <= -tolerance_abs <= high if higher
                                                   else low <= tolerance_abs <= high)),
        forgotten_items=[template.records[i] for i in worst_first[:MAX_LISTED] if drops[i] > 0]
        if template.records else [],
        gained_items=[template.records[i] for i in best_first[:MAX_LISTED] if drops[i] < 0]
        if template.records else [],
        base_values=list(base_values),
        tuned_values=list(tuned_values),
        family_size=decision.family_size,
        se=float(se),
    )


def paired_records(base_records: Sequence[dict[str, Any]], tuned_records: Sequence[dict[str, Any]],
                   base_values: Sequence[float], tuned_values: Sequence[float]) -> list[dict[str, Any]]:
    """Per-item records side by side: prompt, expected, both answers and both scores."""
    merged = []
    for b, t, bv, tv in zip(base_records, tuned_records, base_values, tuned_values):
        expected = b.get("choices", [None])[b["gold"]] if "gold" in b else b.get("targets")
        merged.append({
            "id": b.get("id"), "prompt": b.get("prompt"), "expected": expected,
            "base_answer": b.get("answer"), "tuned_answer": t.get("answer"),
            "base": bv, "tuned": tv,
            **({"hits": t["hits"]} if "hits" in t else {}),
        })
    return merged
