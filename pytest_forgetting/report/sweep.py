"""The checkpoint sweep: which of several candidates to ship, from one run against the base.

With two or more candidates (``--tuned-model "out/checkpoint-*"``) the results are read as a
sweep: a table of checkpoint x capability (each cell the delta and whether it held), a
recommendation, the last checkpoint at which every general capability still held, and a
Pareto plot of target gain against worst general loss.

Two kinds of capability take part. A *general* capability is one the tuning must keep; it
held when its verdict passed and Holm's correction did not fail it. A *target* capability
(``@capability(name, target=True)``) is the domain being trained: a gain is expected there,
and its drop is reported, never failed. The numbers, per candidate:

- worst general loss: the largest observed drop (``observed_drop``, oriented so that positive
  is worse whatever the metric's direction) among its general results, in the metrics' units;
- target gain: the mean oriented delta (positive is better) of its target results.

The recommendation, among the candidates that keep every general capability of the run: the
one with the largest target gain (the first in candidate order on a tie); without target
capabilities, the last such candidate in candidate (checkpoint) order, i.e. the most
trained one that still keeps everything. When none keeps every general capability, the one
with the smallest worst general loss, said plainly to be the least bad, not a pass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

if TYPE_CHECKING:
    from pytest_forgetting.comparison.result import ComparisonResult

TITLE = "Checkpoint sweep"


@dataclass
class Cell:
    """One candidate's results for one capability (the worst of them when there are several).

    Attributes:
        delta: tuned - base of the worst result (its metric's own sign).
        held: a general capability was kept (every result); a target's: it did not drop.
        target: the column is a target capability.
        text: ``held``/``forgot`` for a general capability, ``gained``/``dropped``/``no gain``
            for a target.
    """

    delta: float
    held: bool
    target: bool
    text: str


@dataclass
class CandidateRow:
    """One candidate's line of the sweep."""

    candidate: str
    cells: dict[str, Cell]
    #: Every general capability of the run was checked for this candidate and kept.
    held: bool
    #: The largest oriented drop among its general results (positive = worse); None without any.
    worst_loss: Optional[float]
    #: The mean oriented delta of its target results (positive = better); None without any.
    target_gain: Optional[float]


@dataclass
class Sweep:
    """The sweep over a run's candidates, in candidate order, and what it recommends."""

    rows: list[CandidateRow]
    columns: list[str]
    targets: list[str]
    #: The candidate to ship (None when forgetting cannot be judged: no general capability).
    recommended: Optional[str]
    #: The recommendation as one plain sentence.
    recommendation: str
    #: No candidate kept every general capability (``recommended`` is then the least bad).
    none_passed: bool
    #: The last candidate before the first one that lost a general capability (None when the first did).
    last_held: Optional[str]
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``report.json``'s ``sweep``)."""
        return {
            "candidates": [{"candidate": row.candidate, "held": row.held, "worst_general_loss": row.worst_loss,
                            "target_gain": row.target_gain,
                            "cells": {name: asdict(cell) for name, cell in row.cells.items()}} for row in self.rows],
            "capabilities": self.columns, "targets": self.targets, "recommended": self.recommended,
            "recommendation": self.recommendation, "none_passed": self.none_passed, "last_held": self.last_held,
            "notices": self.notices,
        }

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows of strings: candidate, one column per capability, worst loss, target gain."""
        header = ["candidate", *(f"{c} (target)" if c in self.targets else c for c in self.columns),
                  "worst general loss", "target gain"]
        body = [[row.candidate,
                 *(f"{cell.delta:+.3f} {cell.text}" if (cell := row.cells.get(c)) else "not run"
                   for c in self.columns),
                 _number(row.worst_loss), _number(row.target_gain, signed=True)] for row in self.rows]
        return header, body

    def held_text(self) -> str:
        """The last-held line's sentence."""
        if not [c for c in self.columns if c not in self.targets]:
            return "no general capability was checked"
        if self.last_held is None:
            return f"none: {self.rows[0].candidate}, the first, already lost a general capability"
        return self.last_held

    def lines(self) -> list[str]:
        """The terminal rendering: aligned table, recommendation, last-held line, notices."""
        header, body = self.table()
        widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
        out = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
               for cells in (header, *body)]
        out += [f"recommended: {self.recommendation}",
                f"last checkpoint at which every general capability still held: {self.held_text()}"]
        return out + [f"notice: {notice}" for notice in self.notices]

    def markdown(self) -> str:
        """The Markdown rendering (appended to ``report.md`` and the GitHub job summary)."""
        header, body = self.table()
        out = [f"### {TITLE}", ""] + [f"> **Notice:** {notice}" for notice in self.notices]
        if self.notices:
            out.append("")
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
        out += ["", f"**Recommended:** {self.recommendation}.", "",
                f"Last checkpoint at which every general capability still held: {self.held_text()}."]
        return "\n".join(out) + "\n"


def sweep_of(results: Sequence["ComparisonResult"], order: Sequence[str] = ()) -> Optional[Sweep]:
    """The sweep over ``results``' candidates, or None when they name fewer than two.

    ``order`` is the candidate order (the session's: checkpoints by number); candidates it does
    not name follow in the order their results appear.
    """
    present = dict.fromkeys(r.candidate for r in results)
    if len(present) < 2:
        return None
    candidates = [c for c in dict.fromkeys(order) if c in present] + [c for c in present if c not in order]
    names = _column_names(results)
    columns = list(dict.fromkeys(names[id(r)] for r in results))
    targets = [c for c in columns if any(r.is_target for r in results if names[id(r)] == c)]
    notices = [f"{c} is marked target=True in some tests and not in others; it is read as a target"
               for c in targets if not all(r.is_target for r in results if names[id(r)] == c)]
    general = [c for c in columns if c not in targets]
    rows = [_row(candidate, [r for r in results if r.candidate == candidate], names, general)
            for candidate in candidates]
    if targets and not general:
        notices.append(f"target capability {', '.join(targets)} has no general capability beside it in this run: "
                       "the sweep cannot judge forgetting (mark what the tuning must keep with "
                       "@capability(name), without target=True)")
    recommended, sentence, none_passed = _recommend(rows, bool(general), bool(targets))
    last_held = None
    for row in rows if general else ():
        if not row.held:
            break
        last_held = row.candidate
    return Sweep(rows, columns, targets, recommended, sentence, none_passed, last_held, notices)


def _column_names(results: Sequence["ComparisonResult"]) -> dict[int, str]:
    """Each result's column: its capability, with the metric when the capability has several."""
    metrics: dict[str, set[str]] = {}
    for r in results:
        metrics.setdefault(r.capability, set()).add(r.metric)
    return {id(r): f"{r.capability} ({r.metric})" if len(metrics[r.capability]) > 1 else r.capability
            for r in results}


def _row(candidate: str, results: list["ComparisonResult"], names: dict[int, str],
         general: list[str]) -> CandidateRow:
    cells: dict[str, Cell] = {}
    for column in dict.fromkeys(names[id(r)] for r in results):
        mine = [r for r in results if names[id(r)] == column]
        worst = max(mine, key=lambda r: _finite(r.observed_drop, -math.inf))
        if column in general:
            held = all(r.kept for r in mine)
            text = "held" if held else "forgot"
        else:
            held = not any(not r.passed and r.observed_drop > 0 for r in mine)
            text = "dropped" if not held else "gained" if worst.observed_drop < 0 else "no gain"
        cells[column] = Cell(worst.delta, held, column not in general, text)
    losses = [r.observed_drop + 0.0 for r in results if names[id(r)] in general and math.isfinite(r.observed_drop)]
    gains = [0.0 - r.observed_drop for r in results
             if names[id(r)] not in general and math.isfinite(r.observed_drop)]
    held = bool(general) and all(c in cells and cells[c].held for c in general)
    return CandidateRow(candidate, cells, held, max(losses) if losses else None,
                        sum(gains) / len(gains) if gains else None)


def _recommend(rows: list[CandidateRow], general: bool, targets: bool) -> tuple[Optional[str], str, bool]:
    """(recommended, the sentence, none passed); see the module's docstring for the rule."""
    if not general:
        gained = [row for row in rows if row.target_gain is not None]
        best = max(gained, key=lambda row: row.target_gain or 0.0) if gained else None
        aside = f"; the largest target gain is {best.candidate}'s ({best.target_gain:+.3f})" if best else ""
        return None, f"none: cannot judge forgetting without a general capability{aside}", False
    kept = [row for row in rows if row.held]
    if kept and targets:
        best = max(kept, key=lambda row: _finite(row.target_gain, -math.inf))
        return best.candidate, (f"{best.candidate}: keeps every general capability, with the largest target "
                                f"gain ({_number(best.target_gain, signed=True)}) of the {len(kept)} of "
                                f"{len(rows)} candidates that do"), False
    if kept:
        best = kept[-1]
        return best.candidate, (f"{best.candidate}: the last candidate in checkpoint order that keeps every "
                                f"general capability ({len(kept)} of {len(rows)} do; no target capability "
                                "to rank them by)"), False
    best = min(rows, key=lambda row: _finite(row.worst_loss, math.inf))
    return best.candidate, (f"no candidate kept every general capability; the least bad is {best.candidate} "
                            f"(worst general loss {_number(best.worst_loss)}), which also forgot"), True


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """The (label, loss, gain) points no other point beats on both (lower loss, higher gain), by loss."""
    def dominated(p: tuple[str, float, float]) -> bool:
        return any(q[1] <= p[1] and q[2] >= p[2] and (q[1] < p[1] or q[2] > p[2]) for q in points)

    return sorted((p for p in points if not dominated(p)), key=lambda p: (p[1], p[2]))


def plot_sweep(sweep: Sweep, path: Path) -> Optional[Path]:
    """``sweep.png``: target gain against worst general loss (the Pareto front drawn, the
    recommended candidate starred), or, without both numbers, the one there is per checkpoint.
    None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    points = [(row.candidate, row.worst_loss, row.target_gain) for row in sweep.rows
              if row.worst_loss is not None and row.target_gain is not None]
    held = {row.candidate: row.held for row in sweep.rows}
    figure, axis = plt.subplots(figsize=(7.5, 5.5))
    if len(points) >= 2:
        for label, loss, gain in points:
            axis.scatter([loss], [gain], color="tab:green" if held[label] else "tab:red", zorder=3)
            axis.annotate(label, (loss, gain), textcoords="offset points", xytext=(6, 4), fontsize=8)
            if label == sweep.recommended:
                axis.scatter([loss], [gain], marker="*", s=400, facecolors="none", edgecolors="black",
                             zorder=4, label=f"recommended: {label}")
        front = pareto_front(points)
        axis.plot([p[1] for p in front], [p[2] for p in front], color="grey", linestyle="--",
                  drawstyle="steps-post", label="Pareto front")
        axis.axvline(0.0, color="grey", linewidth=0.8)
        axis.set_xlabel("worst general loss (largest drop among general capabilities; right is worse)")
        axis.set_ylabel("target gain (mean delta of target capabilities; up is better)")
        axis.legend(loc="best", fontsize=8)
    else:
        losses = any(row.worst_loss is not None for row in sweep.rows)
        values = [row.worst_loss if losses else row.target_gain for row in sweep.rows]
        x = list(range(len(sweep.rows)))
        shown = [(i, v) for i, v in zip(x, values) if v is not None]
        axis.plot([i for i, _ in shown], [v for _, v in shown], color="tab:blue", zorder=2)
        for i, value in shown:  # green: every general capability held; red: one was lost
            row = sweep.rows[i]
            axis.scatter([i], [value], color="tab:blue" if not losses else "tab:green" if row.held else "tab:red",
                         zorder=3)
            if row.candidate == sweep.recommended:
                axis.scatter([i], [value], marker="*", s=400, facecolors="none", edgecolors="black",
                             zorder=4, label=f"recommended: {row.candidate}")
                axis.legend(loc="best", fontsize=8)
        axis.axhline(0.0, color="grey", linewidth=0.8)
        axis.set_xticks(x, [row.candidate for row in sweep.rows], rotation=30, ha="right")
        axis.set_ylabel("worst general loss (up is worse)" if losses else "target gain (up is better)")
    axis.set_title(TITLE + (" (no candidate kept every general capability)" if sweep.none_passed else ""))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _finite(value: Optional[float], default: float) -> float:
    return value if value is not None and math.isfinite(value) else default


def _number(value: Optional[float], *, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    value += 0.0  # no "-0.000"
    return f"{value:+.3f}" if signed else f"{value:.3f}"
