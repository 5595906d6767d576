"""The per-capability summary table shared by the terminal, Markdown and plot reports."""

from __future__ import annotations

from typing import Any, Sequence

HEADER = ("capability", "metric", "n", "base", "tuned", "delta", "interval", "tolerance", "forgotten",
          "gained", "verdict")


def apply_holm(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Holm's step-down correction across the session's results decided under "significant".

    Adds ``p_holm`` (the Holm-adjusted p-value) and ``holm_verdict`` to each of them: "fail"
    when the adjusted p is below alpha and the drop exceeds the tolerance. The family has
    as many hypotheses as the larger of these results and the tests' per-test Bonferroni
    family (``family_size``), so Holm is never less strict than the per-test decision.
    Returns the results that only Holm fails (their per-test verdict passed).
    """
    from pytest_forgetting.comparison.stats import holm

    family = [r for r in results if r.get("policy") == "significant"]
    if not family:
        return []
    size = max(len(family), *(int(r.get("family_size", 1)) for r in family))
    p_values = [r["p_value"] for r in family] + [1.0] * (size - len(family))
    for result, adjusted in zip(family, holm(p_values)):
        result["p_holm"] = adjusted
        drop = -result["delta"] if result["higher_is_better"] else result["delta"]
        result["holm_verdict"] = "fail" if adjusted < result["alpha"] and drop > result["tolerance_abs"] else "pass"
    return [r for r in family if r["holm_verdict"] == "fail" and r["verdict"] == "pass"]


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
