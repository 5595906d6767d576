"""The forgetting curve: each capability's delta against the training step, with its tolerance band."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence


def plot_forgetting_curve(history: Sequence[dict[str, Any]], path: Path) -> Optional[Path]:
    """One line per capability (delta, oriented so that down is worse) over the evaluated steps, the band
    ``[-tolerance, 0]`` shaded, failed points marked; target capabilities dashed. None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not history:
        return None
    figure, axis = plt.subplots(figsize=(8, 4.5))
    names = list(dict.fromkeys(_name(r) for entry in history for r in entry["results"]))
    tolerance = 0.0
    for index, name in enumerate(names):
        points = [(entry["step"], r) for entry in history for r in entry["results"] if _name(r) == name]
        steps = [step for step, _ in points]
        deltas = [r.delta if r.higher_is_better else -r.delta for _, r in points]
        target = bool(points[0][1].extra.get("target"))
        color = f"C{index % 10}"
        axis.plot(steps, deltas, marker="o", color=color, linestyle="--" if target else "-",
                  label=f"{name}{' (target)' if target else ''}")
        failed = [(s, d) for (s, r), d in zip(points, deltas) if not r.passed and not target]
        if failed:
            axis.scatter(*zip(*failed), marker="x", s=80, color="tab:red", zorder=5)
        if not target:
            tolerance = max(tolerance, max(r.tolerance_abs for _, r in points))
    if tolerance:
        axis.axhspan(-tolerance, 0.0, color="tab:green", alpha=0.12, label=f"tolerance band (-{tolerance:g})")
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.set_xlabel("training step")
    axis.set_ylabel("tuned - base (down is worse)")
    axis.set_title("Forgetting during training (x: capability failed)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _name(result: Any) -> str:
    return f"{result.capability} ({result.metric})"
