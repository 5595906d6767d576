"""The per-capability summary table shared by the terminal and Markdown reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from pytest_forgetting.comparison.result import ComparisonResult

HEADER = ("capability", "metric", "n", "base", "tuned", "delta", "interval", "tolerance", "forgotten",
          "gained", "verdict")


def several_candidates(results: Sequence["ComparisonResult"]) -> bool:
    """True when the results belong to more than one candidate (the tables then name it per row)."""
    return len({r.candidate for r in results}) > 1


def verdict_text(r: "ComparisonResult") -> str:
    """``PASS``, ``FAIL``, ``FAIL (Holm)`` (a target's: :func:`target_text`), with ``(underpowered)``
    when the check was inconclusive."""
    if r.is_target:
        verdict = target_text(r)
    else:
        verdict = "FAIL (Holm)" if r.failed_by_holm else r.verdict.upper()
    return verdict + (" (underpowered)" if r.underpowered else "")


def target_text(r: "ComparisonResult") -> str:
    """A target capability's row: never "kept", only what was observed.

    ``TARGET: DROPPED`` when the verdict failed on an observed drop (a general capability would
    have failed its test), else ``TARGET: GAINED`` for an observed gain, ``TARGET: NO GAIN``
    otherwise. The ``verdict`` field (JSON, JUnit) keeps the statistical ``pass``/``fail``.
    """
    if not r.passed and r.observed_drop > 0:
        return "TARGET: DROPPED"
    return "TARGET: GAINED" if r.observed_drop < 0 else "TARGET: NO GAIN"


def header(results: Sequence["ComparisonResult"]) -> tuple[str, ...]:
    """The table's column names (``candidate`` first when there are several)."""
    return (("candidate",) if several_candidates(results) else ()) + HEADER


def rows(results: Sequence["ComparisonResult"]) -> list[tuple[str, ...]]:
    """One row of strings per result, in :func:`header` order."""
    named = several_candidates(results)
    return [(
        *((r.candidate,) if named else ()),
        r.capability, r.metric, r.items_text, f"{r.base_score:.3f}", f"{r.tuned_score:.3f}",
        f"{r.delta:+.3f}", f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]", f"{r.tolerance_abs:.3f}",
        str(r.forgotten), str(r.gained), verdict_text(r),
    ) for r in results]


def sequential_note(results: Sequence["ComparisonResult"]) -> str:
    """A line under the table when sequential verdicts stopped early (``n`` reads ``96 of 314``), else empty."""
    early = [r for r in results if r.decided_early]
    if not any(r.looks for r in results):
        return ""
    seen, total = sum(r.n for r in results if r.looks), sum(r.suite_size for r in results if r.looks)
    return (f"sequential verdicts: {len(early)} of {sum(1 for r in results if r.looks)} decided early "
            f"('n' reads 'decided after n of N items'); {seen} of {total} items scored")


def text_table(results: Sequence["ComparisonResult"]) -> list[str]:
    """The table as aligned plain-text lines."""
    columns, body = header(results), rows(results)
    left = len(columns) - len(HEADER) + 2  # the name columns are left-aligned, as is the verdict
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(columns)]
    line = lambda cells: "  ".join(c.ljust(w) if i < left or i == len(columns) - 1 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(columns).rstrip(), *(line(row).rstrip() for row in body)]


def markdown_table(results: Sequence["ComparisonResult"]) -> str:
    """The table in GitHub-flavoured Markdown, with a verdict mark per row (a target's: a dart)."""
    columns = header(results)
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for result, row in zip(results, rows(results)):
        mark = ":dart:" if result.is_target else ":white_check_mark:" if result.kept else ":x:"
        out.append("| " + " | ".join([*row[:-1], f"{mark} {row[-1]}"]) + " |")
    return "\n".join(out)
