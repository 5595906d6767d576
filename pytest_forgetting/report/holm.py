"""Holm's correction across each candidate's "significant" results, and the failures only it finds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import pytest

from pytest_forgetting.report.junit import junit_properties

if TYPE_CHECKING:
    from pytest_forgetting.comparison.result import ComparisonResult


def apply_holm(results: Sequence["ComparisonResult"]) -> list["ComparisonResult"]:
    """Holm's step-down correction across each candidate's results decided under "significant".

    Each candidate is its own release decision, so its results form their own family; a target
    capability's results (``extra["target"]``: the domain being trained) are not in it. Sets
    ``holm_p`` (the Holm-adjusted p-value) and ``holm_verdict`` on each of them: "fail" when
    the adjusted p is below alpha and the drop exceeds the tolerance. A family has as many
    hypotheses as the larger of its results and the tests' per-test Bonferroni family
    (``family_size``), so Holm is never less strict than the per-test decision. Returns the
    results that only Holm fails (their per-test verdict passed).
    """
    from pytest_forgetting.comparison.stats import holm

    for candidate in dict.fromkeys(r.candidate for r in results):
        family = [r for r in results
                  if r.candidate == candidate and r.policy == "significant" and not r.is_target]
        if not family:
            continue
        size = max(len(family), *(r.family_size for r in family))
        p_values = [r.p_value for r in family] + [1.0] * (size - len(family))
        for result, adjusted in zip(family, holm(p_values)):
            result.holm_p = adjusted
            failing = adjusted < result.alpha and result.observed_drop > result.tolerance_abs
            result.holm_verdict = "fail" if failing else "pass"
    return [r for r in results if r.failed_by_holm]


def report_holm_failure(config: pytest.Config, result: "ComparisonResult", *, with_candidate: bool = False) -> None:
    """A failed test case for a capability only Holm's correction fails (JUnit, terminal)."""
    assert result.holm_p is not None
    name = f"{result.capability}][{result.candidate}" if with_candidate else result.capability
    nodeid = f"forgetting::holm[{name}]"
    message = (
        f"FAIL {result.capability} (Holm): {result.metric} {result.base_score:.3f} -> "
        f"{result.tuned_score:.3f} (delta {result.delta:+.3f}); Holm-adjusted p "
        f"{result.holm_p:.4g} < alpha {result.alpha:g} across the session's capabilities and the "
        f"drop {abs(result.delta):.3f} exceeds the tolerance {result.tolerance_abs:.3f} (test {result.test} "
        "passed its own Bonferroni-corrected check)"
    )
    properties = [*[(key, "fail" if key == "verdict" else value)
                    for key, value in junit_properties(result, with_candidate=with_candidate)],
                  ("p_holm", f"{result.holm_p:.6g}")]
    location = ("forgetting", None, f"holm[{name}]")
    # every report listener (junitxml, ...) but the terminal's progress line, which has ended;
    # the terminal counts the failure and lists it under FAILURES
    terminal = config.pluginmanager.getplugin("terminalreporter")
    log_report = config.pluginmanager.subset_hook_caller(
        "pytest_runtest_logreport", remove_plugins=[terminal] if terminal is not None else [])
    for when, outcome, longrepr in (("call", "failed", message), ("teardown", "passed", None)):
        report = pytest.TestReport(nodeid=nodeid, location=location, keywords={}, outcome=outcome,
                                   longrepr=longrepr, when=when, user_properties=properties)
        log_report(report=report)
        if terminal is not None and outcome == "failed":
            terminal.stats.setdefault("failed", []).append(report)
