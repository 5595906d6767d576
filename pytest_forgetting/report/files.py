"""Report files: ``report.json`` (everything), ``report.md`` (the table), ``plot.png``."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from pytest_forgetting.report.tables import markdown_table, sequential_note, several_candidates

if TYPE_CHECKING:
    from pytest_forgetting.comparison.result import ComparisonResult


def markdown(results: Sequence["ComparisonResult"], *, title: str = "Forgetting check") -> str:
    """The Markdown summary: verdict counts, the table, and the first forgotten items."""
    failed = [r for r in results if not r.passed or r.failed_by_holm]
    named = several_candidates(results)
    lines = [f"## {title}", "",
             f"{len(results) - len(failed)} of {len(results)} capabilities kept; "
             f"{len(failed)} forgot." if results else "No forgetting checks ran.", ""]
    if results:
        models = {(r.base_model, r.tuned_model) for r in results}
        for base, tuned in sorted(models, key=str):
            lines.append(f"Base `{base}` vs tuned `{tuned}`.")
        lines += ["", markdown_table(results), ""]
        note = sequential_note(results)
        if note:
            lines += [note + ".", ""]
    for r in failed:
        items = r.forgotten_items
        if not items:
            continue
        who = f"{r.candidate}: " if named else ""
        lines += [f"<details><summary>{who}{r.capability}: {r.forgotten} forgotten items</summary>", "",
                  "| id | prompt | expected | base | tuned |", "|---|---|---|---|---|"]
        for item in items[:10]:
            cells = [item.get("id"), item.get("prompt"), item.get("expected"), item.get("base_answer"),
                     item.get("tuned_answer")]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines += ["", "</details>", ""]
    underpowered = [r.capability for r in results if r.underpowered]
    if underpowered:
        lines.append(f"Underpowered (add items to detect the tolerance): {', '.join(sorted(set(underpowered)))}.")
    if any(r.extra.get("base", {}).get("perplexity") is not None for r in results):
        lines.append("NLL rows decide on the mean over items of each item's nats/token; the perplexity in "
                     "report.json is token-weighted over all items.")
    return "\n".join(lines).rstrip() + "\n"


def _cell(value: Any) -> str:
    text = " ".join(str(value if not isinstance(value, list) else " / ".join(map(str, value))).split())
    text = text.replace("|", "\\|")
    return text if len(text) <= 80 else text[:77] + "..."


def write_reports(results: Sequence["ComparisonResult"], folder: Path, *,
                  models: Optional[dict[str, Any]] = None) -> list[Path]:
    """Write report.json (strict JSON: NaN and infinities as null), report.md and (with matplotlib) plot.png."""
    folder.mkdir(parents=True, exist_ok=True)
    from pytest_forgetting import __version__
    from pytest_forgetting.comparison.result import finite

    payload = finite({
        "tool": "pytest-forgetting", "version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": models or {}, "results": [r.to_dict() for r in results],
    })
    text = json.dumps(payload, indent=2, default=str, allow_nan=False)
    written = [_atomic_write(folder / "report.json", text),
               _atomic_write(folder / "report.md", markdown(results))]
    from pytest_forgetting.report.plot import plot_deltas

    image = plot_deltas(results, folder / "plot.png")
    if image is not None:
        written.append(image)
    return written


def append_github_summary(results: Sequence["ComparisonResult"]) -> Optional[Path]:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target or not results:
        return None
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(markdown(results) + "\n")
    return Path(target)


def _atomic_write(path: Path, text: str) -> Path:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path
