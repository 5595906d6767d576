"""A PNG of each capability's delta with its interval and tolerance line (matplotlib extra)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

if TYPE_CHECKING:
    from pytest_forgetting.comparison.result import ComparisonResult


def plot_deltas(results: Sequence["ComparisonResult"], path: Path) -> Optional[Path]:
    """Draw delta +- interval per result, with the -tolerance mark; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not results:
        return None
    named = len({r.candidate for r in results}) > 1
    labels = [f"{r.candidate + ': ' if named else ''}{r.capability} ({r.metric})" for r in results]
    # Orient every metric so that left = worse: for lower-is-better metrics flip the sign.
    sign = [1.0 if r.higher_is_better else -1.0 for r in results]
    delta = [s * r.delta for s, r in zip(sign, results)]
    # an interval that could not be computed (too few items) is drawn to the tolerance's scale
    span = [max(1.0, 3 * r.tolerance_abs) for r in results]
    low = [max(d - w, min(s * r.ci_low, s * r.ci_high)) for d, w, s, r in zip(delta, span, sign, results)]
    high = [min(d + w, max(s * r.ci_low, s * r.ci_high)) for d, w, s, r in zip(delta, span, sign, results)]
    figure, axis = plt.subplots(figsize=(8, 1.2 + 0.5 * len(results)))
    positions = list(range(len(results)))[::-1]
    for y, d, lo, hi, r in zip(positions, delta, low, high, results):
        color = "tab:blue" if r.is_target else "tab:green" if r.kept else "tab:red"
        axis.errorbar(d, y, xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=4)
        axis.plot([-r.tolerance_abs] * 2, [y - 0.35, y + 0.35], color="black", linestyle="--", linewidth=1)
    axis.axvline(0.0, color="grey", linewidth=0.8)
    axis.set_yticks(positions, labels)
    targets = "; blue = target capability" if any(r.is_target for r in results) else ""
    axis.set_xlabel(f"tuned - base (oriented: left is worse); dashed = -tolerance{targets}")
    axis.set_title("Forgetting per capability")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
