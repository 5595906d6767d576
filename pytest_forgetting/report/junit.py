"""The session's comparison results, merged across pytest-xdist workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

#: JUnit XML properties recorded for every comparison (pytest's ``record_property`` data).
JUNIT_KEYS = (
    "capability", "metric", "base_score", "tuned_score", "delta", "ci_low", "ci_high", "p_value", "n",
    "forgotten", "gained", "tolerance", "policy", "verdict",
)
WORKER_KEY = "pytest_forgetting_results"


@dataclass
class ResultStore:
    """Results as JSON-ready dicts, each tagged with the test's node id."""

    results: list[dict[str, Any]] = field(default_factory=list)

    def add(self, nodeid: str, result: Any) -> None:
        """Keep ``result`` (a :class:`ComparisonResult`) for the reports."""
        self.results.append({"nodeid": nodeid, **result.to_dict()})

    def extend(self, results: list[dict[str, Any]]) -> None:
        """Merge results published by an xdist worker."""
        self.results.extend(results)


STORE = pytest.StashKey[ResultStore]()


def junit_properties(result: Any) -> list[tuple[str, Any]]:
    """The (name, value) pairs put on a test case in JUnit XML."""
    return junit_values({key: getattr(result, key) for key in JUNIT_KEYS})


def junit_values(data: dict[str, Any]) -> list[tuple[str, str]]:
    """:func:`junit_properties` from a result's dict (as kept in the store)."""
    properties = []
    for key in JUNIT_KEYS:
        value = data[key]
        name = {"base_score": "base", "tuned_score": "tuned"}.get(key, key)
        properties.append((name, f"{value:.6g}" if isinstance(value, float) else str(value)))
    return properties
