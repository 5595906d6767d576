"""Report files: ``report.json`` (everything), ``report.md`` (the table), ``plot.png``, and with several
candidates the sweep (``sweep`` in the JSON, a section of the Markdown, ``sweep.png``).

Each file lands atomically (a temporary file, then ``os.replace``); a folder that cannot be
written (a full disk, no permission) raises one :class:`ForgettingError` line saying which
file, where, why and how to fix it, and leaves no temporary file behind.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from pytest_forgetting.errors import ForgettingError
from pytest_forgetting.report.tables import markdown_table, sequential_note, several_candidates

if TYPE_CHECKING:
    from pytest_forgetting.comparison.result import ComparisonResult


def markdown(results: Sequence["ComparisonResult"], *, title: str = "Forgetting check",
             order: Sequence[str] = ()) -> str:
    """The Markdown summary: verdict counts, the table, the first forgotten items, and with several
    candidates the sweep (``order``: the candidates' order, see :func:`~pytest_forgetting.report.sweep.sweep_of`).

    The counts are of general capabilities; a target capability's results (the domain being
    trained) are listed as such, never counted as kept.
    """
    from pytest_forgetting.report.sweep import sweep_of

    general = [r for r in results if not r.is_target]
    failed = [r for r in general if not r.kept]
    targets = sorted({r.capability for r in results if r.is_target})
    named = several_candidates(results)
    if not results:
        headline = "No forgetting checks ran."
    elif not general:
        headline = "No general capability was checked: forgetting is not judged."
    else:
        headline = f"{len(general) - len(failed)} of {len(general)} capabilities kept; {len(failed)} forgot."
    lines = [f"## {title}", "", headline, ""]
    if targets:
        lines += [f"Target capabilities (the domain being trained; a drop is reported, not failed): "
                  f"{', '.join(targets)}.", ""]
    failed += [r for r in results if r.is_target and not r.passed and r.observed_drop > 0]  # dropped
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
        who = (f"{r.candidate}: " if named else "") + ("target " if r.is_target else "")
        lines += [f"<details><summary>{who}{r.capability}: {r.forgotten} forgotten items</summary>", "",
                  "| id | prompt | expected | base | tuned |", "|---|---|---|---|---|"]
        for item in items[:10]:
            cells = [item.get("id"), item.get("prompt"), item.get("expected"), item.get("base_answer"),
                     item.get("tuned_answer")]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines += ["", "</details>", ""]
    hinted = {r.candidate or r.tuned_model: r.extra["hints"] for r in failed if r.extra.get("hints")}
    for who, text in hinted.items():
        lines += [f"Hints for {who} from its own settings: {text}.", ""]
    underpowered = [r.capability for r in results if r.underpowered]
    if underpowered:
        lines.append(f"Underpowered (add items to detect the tolerance): {', '.join(sorted(set(underpowered)))}.")
    if any(r.extra.get("base", {}).get("perplexity") is not None for r in results):
        lines.append("NLL rows decide on the mean over items of each item's nats/token; the perplexity in "
                     "report.json is token-weighted over all items.")
    sweep = sweep_of(results, order)
    if sweep is not None:
        lines += ["", sweep.markdown()]
    return "\n".join(lines).rstrip() + "\n"


def _cell(value: Any) -> str:
    text = " ".join(str(value if not isinstance(value, list) else " / ".join(map(str, value))).split())
    text = text.replace("|", "\\|")
    return text if len(text) <= 80 else text[:77] + "..."


def write_reports(results: Sequence["ComparisonResult"], folder: Path, *,
                  models: Optional[dict[str, Any]] = None, order: Sequence[str] = (),
                  notices: Optional[Sequence[str]] = None) -> list[Path]:
    """Write report.json (strict JSON: NaN and infinities as null), report.md and (with matplotlib) plot.png.

    With several candidates (in ``order``), report.json has a ``sweep`` key, report.md the sweep's
    section, and sweep.png (with matplotlib) is written beside plot.png. ``notices`` (by default the
    session's, e.g. a baseline recorded with other library versions) are listed under ``notices``
    in report.json and as notes in report.md, when there are any.

    Raises ForgettingError (one line) when a file cannot be written.
    """
    if notices is None:
        from pytest_forgetting.engine.stored import current_notices

        notices = current_notices()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return _write_all(results, folder, models=models, order=order, notices=list(notices))
    except OSError as exc:
        from pytest_forgetting.storage.cache import write_failure

        name = re.sub(r"^\.(.+)\.\d+\.tmp$", r"\1", Path(str(exc.filename or "files")).name)
        raise ForgettingError(write_failure(f"the report ({name})", folder, exc,
                                            "point --forgetting-report at another folder")) from None


def _write_all(results: Sequence["ComparisonResult"], folder: Path, *, models: Optional[dict[str, Any]],
               order: Sequence[str], notices: list[str]) -> list[Path]:
    from pytest_forgetting import __version__
    from pytest_forgetting.comparison.result import finite
    from pytest_forgetting.report.sweep import plot_sweep, sweep_of

    sweep = sweep_of(results, order)
    payload = finite({
        "tool": "pytest-forgetting", "version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": models or {}, "results": [r.to_dict() for r in results],
        **({"sweep": sweep.to_dict()} if sweep is not None else {}),
        **({"notices": notices} if notices else {}),
    })
    text = json.dumps(payload, indent=2, default=str, allow_nan=False)
    summary = markdown(results, order=order)
    if notices:
        summary += "\n" + "".join(f"> **Notice:** {notice}\n" for notice in notices)
    written = [_atomic_write(folder / "report.json", text), _atomic_write(folder / "report.md", summary)]
    from pytest_forgetting.report.plot import plot_deltas

    images = [plot_deltas(results, folder / "plot.png"),
              plot_sweep(sweep, folder / "sweep.png") if sweep is not None else None]
    return written + [image for image in images if image is not None]


def append_github_summary(results: Sequence["ComparisonResult"], *, order: Sequence[str] = ()) -> Optional[Path]:
    """Append the Markdown summary (with the sweep, for several candidates) to ``$GITHUB_STEP_SUMMARY`` when set."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target or not results:
        return None
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown(results, order=order) + "\n")
    except OSError as exc:
        from pytest_forgetting.storage.cache import write_failure

        raise ForgettingError(write_failure(f"the GitHub step summary ({Path(target).name})", Path(target).parent,
                                            exc, "unset GITHUB_STEP_SUMMARY")) from None
    return Path(target)


def _atomic_write(path: Path, text: str) -> Path:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException as exc:
        try:
            temporary.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a write error names no file: name the one it was for
        raise
    return path
