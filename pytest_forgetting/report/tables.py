"""The per-capability summary table shared by the terminal, Markdown and plot reports."""

from __future__ import annotations

from typing import Any, Sequence

HEADER = ("capability", "metric", "n", "base", "tuned", "delta", "interval", "tolerance", "forgotten",
          "gained", "verdict")


def rows(results: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row of strings per result, in :data:`HEADER` order."""
    table = []
    for r in results:
        verdict = r["verdict"].upper()
        if r.get("holm_verdict") == "fail" and r["verdict"] == "pass":
            verdict = "FAIL (Holm)"
        if r.get("underpowered"):
            verdict += " (underpowered)"
        table.append((
            r["capability"], r["metric"], str(r["n"]), f"{r['base_score']:.3f}", f"{r['tuned_score']:.3f}",
            f"{r['delta']:+.3f}", f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]", f"{r['tolerance_abs']:.3f}",
            str(r["forgotten"]), str(r["gained"]), verdict,
        ))
    return table


def text_table(results: Sequence[dict[str, Any]]) -> list[str]:
    """The table as aligned plain-text lines."""
    body = rows(results)
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(HEADER)]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 or i == len(HEADER) - 1 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(HEADER).rstrip(), *(line(row).rstrip() for row in body)]


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """The table in GitHub-flavoured Markdown, with a verdict mark per row."""
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r, row in zip(results, rows(results)):
        mark = ":white_check_mark:" if row[-1].startswith("PASS") else ":x:"
        out.append("| " + " | ".join([*row[:-1], f"{mark} {row[-1]}"]) + " |")
    return "\n".join(out)
