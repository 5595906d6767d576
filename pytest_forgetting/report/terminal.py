"""The ``forgetting`` section of pytest's terminal summary.

The table of every result, the sequential-verdict note, substitution notes, Holm failures,
the checkpoint sweep (several candidates), the cache's reuse and where the reports went.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from pytest_forgetting.engine.session import EvaluationSession


def write_summary(terminalreporter: Any, evaluation: "EvaluationSession", report_files: Sequence[Path]) -> None:
    """Write the section to pytest's terminal reporter (the controller's, never a worker's)."""
    from pytest_forgetting.report.header import substitutions
    from pytest_forgetting.report.sweep import TITLE, sweep_of
    from pytest_forgetting.report.tables import sequential_note, text_table

    results = evaluation.results
    terminalreporter.section("forgetting")
    for line in text_table(results):
        terminalreporter.write_line(line)
    note = sequential_note(results)
    if note:
        terminalreporter.write_line(note)
    for who, text in substitutions(evaluation).items():
        terminalreporter.write_line(f"note: {who}: {text}")
    holm_failures = [f"{r.capability} [{r.candidate}]" if len(evaluation.candidates) > 1 else r.capability
                     for r in results if r.failed_by_holm]
    if holm_failures:
        terminalreporter.write_line(
            f"Holm correction across capabilities fails: {', '.join(holm_failures)} "
            "(reported as failed test cases forgetting::holm[...])"
        )
    sweep = sweep_of(results, [slot.label for slot in evaluation.candidates])
    if sweep is not None:  # several candidates: which one to ship
        terminalreporter.write_sep("-", TITLE.lower())
        for line in sweep.lines():
            terminalreporter.write_line(line)
    stats = evaluation.stored.stats
    if evaluation.stored.active and stats.hits + stats.scored:
        terminalreporter.write_line(f"forgetting cache: {stats.hits} item results reused, {stats.scored} scored")
    if report_files:
        names = ", ".join(path.name for path in report_files)
        terminalreporter.write_line(f"reports written to {report_files[0].parent} ({names})")
        if not any(path.suffix == ".png" for path in report_files):
            terminalreporter.write_line("no plot.png: install the plot extra (pip install 'pytest-forgetting[plot]')")
