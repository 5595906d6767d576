"""JUnit XML properties of a comparison result (pytest's ``user_properties`` on the test case)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_forgetting.comparison.result import ComparisonResult

#: Result fields recorded on every test case, with their property names.
JUNIT_KEYS = (
    "capability", "metric", "base_score", "tuned_score", "delta", "ci_low", "ci_high", "p_value", "n",
    "forgotten", "gained", "tolerance", "policy", "verdict",
)
_NAMES = {"base_score": "base", "tuned_score": "tuned"}
#: Where pytest-xdist workers put their results for the controller.
WORKER_KEY = "pytest_forgetting_results"


def junit_properties(result: "ComparisonResult", *, with_candidate: bool = False) -> list[tuple[str, str]]:
    """The (name, value) pairs put on a test case; the candidate first when a run compares several."""
    properties = [("candidate", result.candidate)] if with_candidate else []
    for key in JUNIT_KEYS:
        value = getattr(result, key)
        properties.append((_NAMES.get(key, key), f"{value:.6g}" if isinstance(value, float) else str(value)))
    if result.looks:  # sequential verdicts: how many items decided it
        properties += [("suite_size", str(result.suite_size)), ("look", f"{result.look} of {result.looks}"),
                       ("decided", result.sequential_text)]
    if result.is_target:  # the domain being trained: a drop is reported, not failed
        properties.append(("target", "true"))
    return properties
