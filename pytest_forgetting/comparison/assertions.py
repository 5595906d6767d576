"""Assertion helpers: fail a test with a message a person can act on."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Optional

from pytest_forgetting.comparison.decision import resolve_decision
from pytest_forgetting.comparison.result import ComparisonResult
from pytest_forgetting.comparison.verdict import redecide
from pytest_forgetting.errors import ForgettingDetected, ForgettingError
from pytest_forgetting.tolerance import ToleranceLike

#: Forgotten items shown in a failure message.
SHOWN_ITEMS = 5


def assert_no_forgetting(
    result: ComparisonResult,
    tolerance: Optional[ToleranceLike] = None,
    *,
    policy: Optional[str] = None,
    alpha: Optional[float] = None,
) -> ComparisonResult:
    """Fail the test unless ``result``'s verdict passes, or it is a target capability's.

    A target's result (``extra["target"]``, from ``@capability(name, target=True)``) never fails:
    its verdict stays in the reports (``TARGET: DROPPED``), since a drop where training aims is
    not forgetting. ``tolerance``/``policy``/``alpha`` given here re-decide the same scores (the helper's
    argument wins over the marker and the session default). The result is updated in place,
    so every report shows the decision made here; it is also returned.
    """
    __tracebackhide__ = True
    if tolerance is not None or policy is not None or alpha is not None:
        try:
            decision = resolve_decision(
                tolerance=tolerance if tolerance is not None else result.tolerance,
                policy=policy or result.policy,
                alpha=alpha if alpha is not None else result.alpha,
                family_size=result.family_size,
            )
        except ForgettingError as exc:
            raise ForgettingError(f"assert_no_forgetting({result.capability!r}): {exc}") from None
        decided = redecide(result, decision)
        for field in fields(result):
            setattr(result, field.name, getattr(decided, field.name))
    if not result.passed and not result.is_target:
        raise ForgettingDetected(failure_message(result))
    return result


def assert_no_drift(result: ComparisonResult, max_kl: Optional[float] = None) -> ComparisonResult:
    """Fail the test when the tuned model drifted beyond ``max_kl`` (see ``compare_drift``)."""
    __tracebackhide__ = True
    return assert_no_forgetting(result, tolerance=max_kl)


def _fmt(value: Any, width: int = 60) -> str:
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else " | ".join(map(str, value))
    text = " ".join(str(value).split()) if value is not None else "-"
    return text if len(text) <= width else text[: width - 3] + "..."


def failure_message(result: ComparisonResult) -> str:
    """The verdict line, a table of the numbers, the first forgotten items, and what to do."""
    bound_name = "ci_low" if result.higher_is_better else "ci_high"
    lines = [
        result.summary_line(),
        "",
        f"  {'':<22}{'base':>10}{'tuned':>10}{'delta':>10}",
        f"  {result.metric:<22}{result.base_score:>10.3f}{result.tuned_score:>10.3f}{result.delta:>+10.3f}",
        f"  {'interval':<22}[{result.ci_low:+.3f}, {result.ci_high:+.3f}] ({bound_name} decides, "
        f"{result.level} one-sided)",
        f"  {'p-value (tuned worse)':<22}{result.p_value:.4f}",
        f"  {'items':<22}n={result.items_text}, forgotten={result.forgotten}, gained={result.gained}",
        f"  {'test':<22}{result.statistic}",
    ]
    if result.looks > 1:
        seen = "the items listed are among those scored" if result.decided_early else "every item was scored"
        lines.append(f"  {'sequential':<22}{result.sequential_text}; {seen}")
    perplexity = result.extra.get("base", {}).get("perplexity"), result.extra.get("tuned", {}).get("perplexity")
    if None not in perplexity:
        lines.append(f"  {'perplexity':<22}{perplexity[0]:>10.3f}{perplexity[1]:>10.3f}  (token-weighted over "
                     f"all items; the decision uses {result.metric}, the mean over items)")
    if result.underpowered:
        lines.append(
            f"  warning: with n={result.n} the smallest detectable drop is {result.amount(result.mde)} > tolerance "
            f"{result.amount(result.tolerance_abs)}: add items to this suite to make the check decisive"
        )
    if result.extra.get("top_shifted"):
        shifted = ", ".join(f"{token!r} x{count}" for token, count in result.extra["top_shifted"][:5])
        lines.append(f"  most-shifted tokens: {shifted}")
    if result.forgotten_items:
        lines += ["", f"First forgotten items ({min(SHOWN_ITEMS, result.forgotten)} of {result.forgotten}):"]
        for record in result.forgotten_items[:SHOWN_ITEMS]:
            lines.append(f"  - [{record.get('id')}] {_fmt(record.get('prompt'))}")
            if record.get("expected") is not None:
                lines.append(f"      expected: {_fmt(record.get('expected'))}")
            lines.append(f"      base:     {_fmt(record.get('base_answer'))}")
            lines.append(f"      tuned:    {_fmt(record.get('tuned_answer'))}")
    if result.extra.get("hints"):
        lines += ["", f"Hints from the run's own settings ({result.extra['hints']})"]
    lines += [
        "",
        "To act: fix the fine-tune (lower learning rate, fewer steps, rehearse general data), or if "
        f"this drop is acceptable raise the tolerance: @capability({result.capability!r}, "
        f"tolerance=...) or --forgetting-tolerance.",
    ]
    return "\n".join(lines)
