"""The forgetting curve: each capability's delta against the training step, with its own tolerance band."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Sequence


def plot_forgetting_curve(history: Sequence[dict[str, Any]], path: Path) -> Optional[Path]:
    """One small panel per capability: tuned - base at each evaluated step, oriented so that down is worse,
    the band ``[-tolerance, 0]`` shaded, failed points marked with a red x; target capabilities (the trained
    domain, where up is the gain) in their own colour, without a band. None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    if not history:
        return None
    names = list(dict.fromkeys(_name(r) for entry in history for r in entry["results"]))
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False, sharex=True)
    for axis, name in zip(axes.flat, names):
        points = [(entry["step"], r) for entry in history for r in entry["results"] if _name(r) == name]
        steps = [step for step, _ in points]
        deltas = [r.delta if r.higher_is_better else -r.delta for _, r in points]
        target = bool(points[0][1].extra.get("target"))
        axis.plot(steps, deltas, marker="o", color="tab:purple" if target else "tab:blue")
        if not target:
            tolerance = max(r.tolerance_abs for _, r in points)
            axis.axhspan(-tolerance, 0.0, color="tab:green", alpha=0.15)
            axis.axhline(-tolerance, color="tab:green", linewidth=0.8, linestyle="--")
            failed = [(s, d) for (s, r), d in zip(points, deltas) if not r.passed]
            if failed:
                axis.scatter(*zip(*failed), marker="x", s=90, color="tab:red", zorder=5)
        axis.axhline(0.0, color="grey", linewidth=0.8)
        axis.set_title(f"{name}{' - target' if target else ''}", fontsize=9)
        axis.tick_params(labelsize=8)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in list(axes.flat)[len(names):]:
        axis.set_visible(False)
    figure.supxlabel("training step", fontsize=9)
    figure.supylabel("tuned - base (down is worse)", fontsize=9)
    figure.suptitle("Forgetting during training: green band = tolerance, x = failed", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _name(result: Any) -> str:
    return f"{result.capability} ({result.metric})"
